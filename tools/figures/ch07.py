"""The figures of Chapter 7: instruction fine-tuning."""

import json

from matplotlib.patches import FancyArrowPatch, Rectangle

from tools.figures.style import (
    Figure, INK, MONO, MUTED, arrow, blend, box, cache, canvas, data_file, digraph, fill,
    show_token, stored_output, strong, tokenizer, write)


def instruction_data():
    if "data" not in cache:
        cache["data"] = json.loads(data_file("instruction-data.json").read_text(encoding="utf-8"))
    return cache["data"]


def draw_ch07_prompt_template():
    import textwrap

    from previous_chapters import ALPACA_PREAMBLE, RESPONSE_HEADER, format_input
    entry = instruction_data()[50]
    full = format_input(entry) + RESPONSE_HEADER + entry["output"]
    assert full.startswith(ALPACA_PREAMBLE)
    lines = []
    for para in full.split("\n"):
        lines.extend(textwrap.wrap(para, 66) or [""])
    kinds = []
    section = "preamble"
    for line in lines:
        if line.startswith("### Instruction"):
            section = "instruction"
        elif line.startswith("### Input"):
            section = "input"
        elif line.startswith("### Response"):
            section = "response"
        kinds.append(section)
    colors = {"preamble": "grey", "instruction": "blue", "input": "purple", "response": "green"}
    lh = 0.3
    height = len(lines) * lh + 1.3
    fig, ax = canvas(9.8, height)
    x0, top = 0.3, height - 0.75
    write(ax, x0, height - 0.35, "format_input(entry) + RESPONSE_HEADER + entry[\"output\"]",
          size=10.5, ha="left", family=MONO, weight="bold")
    for kind in colors:
        rows = [i for i, k in enumerate(kinds) if k == kind]
        if not rows:
            continue
        y0, y1 = top - (rows[-1] + 1) * lh, top - rows[0] * lh
        box(ax, x0, y0 - 0.02, 6.6, y1 - y0 + 0.04, "", colors[kind], lw=1.0, rounding=0.04)
        name = {"preamble": "fixed preamble", "instruction": "entry[\"instruction\"]",
                "input": "entry[\"input\"]\n(section left out\nwhen empty)",
                "response": "entry[\"output\"]: what\nthe model learns to write"}[kind]
        write(ax, 7.05, (y0 + y1) / 2, name, size=9.5, ha="left", color=strong(colors[kind]))
    for i, line in enumerate(lines):
        write(ax, x0 + 0.1, top - (i + 0.5) * lh, line, size=9.5, ha="left", family=MONO,
              weight="bold" if line.startswith("###") else "normal")
    write(ax, x0, 0.2, "Entry 50 of instruction-data.json, formatted by the course's "
          "format_input.", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch07_collate():
    import torch

    from previous_chapters import InstructionDataset, custom_collate_fn
    tok = tokenizer()
    data = instruction_data()
    # three short entries of different lengths, so that every token fits in the figure
    lengths = sorted(((len(tok.encode(e["instruction"] + e["input"] + e["output"])), k)
                      for k, e in enumerate(data[:200])))
    picks = [lengths[0][1], lengths[6][1], lengths[25][1]]
    entries = [data[k] for k in picks]
    dataset = InstructionDataset(entries, tok, return_prompt_length=True)
    items = [dataset[i] for i in range(len(dataset))]
    inputs, targets = custom_collate_fn(items)
    _, masked = custom_collate_fn(items, mask_prompt=True)
    assert torch.equal(inputs, custom_collate_fn([ids for ids, _ in items])[0])
    n_cols = inputs.shape[1]
    cell = min(0.17, 8.0 / n_cols)
    x0 = 1.3
    colors = {"prompt": blend(strong("blue"), 0.35), "response": blend(strong("green"), 0.45),
              "eot": strong("orange"), "pad": "#aab2b9", "ignore": strong("red")}
    fig, ax = canvas(9.8, 9.0)

    def kind_of(row, j, which, length, prompt_len):
        if which == "inputs":
            return "pad" if j >= length else ("prompt" if j < prompt_len else "response")
        tid = int((targets if which == "targets" else masked)[row, j])
        if tid == -100:
            return "ignore"
        if j == length - 1:
            return "eot"
        return "prompt" if j + 1 < prompt_len else "response"

    y = 8.7
    for row, (ids, prompt_len) in enumerate(items):
        length = len(ids)
        write(ax, 0.1, y, f"example {row + 1}: {length} tokens (prompt {prompt_len}, "
              f"response {length - prompt_len})", size=10, ha="left", weight="bold")
        for k, which in enumerate(["inputs", "targets", "mask_prompt"]):
            yy = y - 0.45 - k * 0.3
            for j in range(n_cols):
                face = colors[kind_of(row, j, which, length, prompt_len)]
                ax.add_patch(Rectangle((x0 + j * cell, yy), cell, 0.24, facecolor=face,
                                       edgecolor="white", linewidth=0.6))
            write(ax, x0 - 0.1, yy + 0.12, which, size=8.5, ha="right", family=MONO)
        y -= 1.45
    # zoom on the end of the first example, with the tokens written out
    ids0, prompt0 = items[0]
    start = n_cols - 11
    zc = 0.74
    zx = 1.3
    write(ax, 0.1, y, f"the last {n_cols - start} positions of example 1, written out",
          size=10, ha="left", weight="bold")
    for k, which in enumerate(["inputs", "targets", "mask_prompt"]):
        yy = y - 0.62 - k * 0.5
        write(ax, zx - 0.1, yy + 0.2, which, size=8.5, ha="right", family=MONO)
        for c, j in enumerate(range(start, n_cols)):
            kind = kind_of(0, j, which, len(ids0), prompt0)
            if which == "inputs":
                tid = int(inputs[0, j])
            else:
                tid = int((targets if which == "targets" else masked)[0, j])
            if tid == -100:
                label = "-100"
            else:
                label = show_token(tok.decode([tid])).replace("<|endoftext|>", "<eot>")
                label = label if len(label) <= 8 else label[:7] + "\u2026"
            dark = kind in ("eot", "ignore")
            ax.add_patch(Rectangle((zx + c * zc, yy), zc - 0.04, 0.4, facecolor=colors[kind],
                                   edgecolor="white"))
            write(ax, zx + c * zc + (zc - 0.04) / 2, yy + 0.2, label, size=7.5, family=MONO,
                  color="white" if dark else INK)
    y -= 2.25
    legend = [("prompt", "prompt token"), ("response", "response token"),
              ("eot", "end of text (50256): kept as the last target"),
              ("pad", "padding (50256) in the inputs"), ("ignore", "-100: ignored by the loss")]
    for k, (kind, label) in enumerate(legend):
        lx = 0.3 + (k % 3) * 3.15
        yy = y - (k // 3) * 0.35
        ax.add_patch(Rectangle((lx, yy), 0.25, 0.22, facecolor=colors[kind], edgecolor=INK,
                               lw=0.5))
        write(ax, lx + 0.35, yy + 0.11, label, size=9, ha="left")
    write(ax, 0.1, y - 0.8, f"custom_collate_fn on entries {picks} of instruction-data.json "
          f"(InstructionDataset, GPT-2 tokens): padded to {n_cols + 1}, then", size=9,
          ha="left", color=MUTED)
    write(ax, 0.1, y - 1.05, f"cut into inputs and targets of {n_cols}; "
          "mask_prompt=True also hides the prompt from the loss. One cell per token.", size=9,
          ha="left", color=MUTED)
    return fig


def draw_ch07_judge_loop():
    from previous_chapters import parse_score
    fig, ax = canvas(9.8, 5.4)
    box(ax, 0.2, 3.9, 2.1, 0.9, "test entry\ninstruction, input,\nreference output", "blue",
        fontsize=9.5)
    arrow(ax, (2.35, 4.35), (2.85, 4.35))
    box(ax, 2.9, 3.9, 2.3, 0.9, "fine-tuned GPT-2\ngenerate_response", "green", fontsize=9.5)
    arrow(ax, (5.25, 4.35), (5.75, 4.35))
    box(ax, 5.8, 3.9, 3.8, 0.9, "format_judge_prompt:\ntask + reference answer\n"
        "+ answer to grade", "grey", fontsize=9.5)
    arrow(ax, (7.7, 3.85), (7.7, 3.2))
    box(ax, 5.8, 2.3, 3.8, 0.9, "judge LLM (Ollama, e.g. Llama 3)\nquery_model: "
        "temperature 0, fixed seed", "orange", fontsize=9.5)
    arrow(ax, (5.75, 2.75), (5.25, 2.75))
    box(ax, 2.9, 2.3, 2.3, 0.9, "parse_score(reply)", "purple", fontsize=10, family=MONO)
    arrow(ax, (2.85, 2.75), (2.35, 2.75))
    box(ax, 0.2, 2.3, 2.1, 0.9, "scores \u2192 average\n(unparsed replies\ncounted apart)",
        "teal", fontsize=9.5)
    ax.add_patch(FancyArrowPatch((0.15, 2.75), (0.15, 4.35), arrowstyle="-|>", mutation_scale=14,
                                 color=MUTED, linewidth=1.3, linestyle="--",
                                 connectionstyle="arc3,rad=-0.6", shrinkA=2, shrinkB=2,
                                 clip_on=False))
    write(ax, -0.55, 3.55, "next\nentry", size=9, color=MUTED, ha="right")
    # parse examples, computed
    write(ax, 0.2, 1.75, "parse_score on sample replies:", size=10, ha="left", weight="bold")
    replies = ["85", "Score: 72/100", "I would rate it 90.", "150", "I can't grade this."]
    for k, reply in enumerate(replies):
        write(ax, 0.3 + (k % 3) * 3.2, 1.35 - (k // 3) * 0.35,
              f"{reply!r} \u2192 {parse_score(reply)}", size=9.5, ha="left", family=MONO)
    write(ax, 0.2, 0.2, "generate_model_scores runs this loop over the test responses; "
          "results computed with the course's parse_score.", size=9.5, ha="left", color=MUTED)
    return fig


def quoted(text, width=40):
    """Text for a DOT label: shortened to `width` characters, quotes and newlines escaped."""
    text = text if len(text) <= width else text[:width - 1] + "\u2026"
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\u21b5")


def draw_ch07_stages():
    """Where this chapter sits: the three stages of building an LLM (schematic)."""
    return digraph(f"""
  subgraph cluster_1 {{ label="stage 1: build an LLM"; color="{MUTED}"; fontcolor="{MUTED}";
    style=dashed;
    data [label="text data, tokens\\n(Chapter 2)"];
    attention [label="attention\\n(Chapter 3)"];
    gpt [label="GPT model\\n(Chapter 4)"];
  }}
  subgraph cluster_2 {{ label="stage 2: pretrain"; color="{MUTED}"; fontcolor="{MUTED}";
    style=dashed;
    pretrain [label="next-token training,\\nOpenAI's weights\\n(Chapter 5)", {fill("teal")}];
  }}
  subgraph cluster_3 {{ label="stage 3: fine-tune"; color="{MUTED}"; fontcolor="{MUTED}";
    style=dashed;
    classify [label="classifier\\n(Chapter 6)", {fill("grey")}];
    instruct [label="instruction fine-tuning\\nthis chapter", {fill("green")}, penwidth=2.4];
  }}
  data -> attention -> gpt -> pretrain;
  pretrain -> classify;
  pretrain -> instruct;
  steps [shape=plain, style="", fontcolor="{strong("green")}", label="7.2 format and split the data\\l" +
         "7.3-7.4 pad, shift, mask: batches\\l7.5-7.6 load GPT-2, fine-tune\\l" +
         "7.7-7.8 answer held-out instructions,\\l         evaluate\\l"];
  instruct -> steps [arrowhead=none, style=dotted, color="{strong("green")}"];
""", rankdir="LR")


def draw_ch07_data_pipeline():
    """Section 7.3's steps on the first entry, checked against what the stored run printed."""
    import re

    from previous_chapters import InstructionDataset, RESPONSE_HEADER, custom_collate_fn
    entry = instruction_data()[0]
    dataset = InstructionDataset([entry], tokenizer(), return_prompt_length=True)
    ids, prompt_len = dataset[0]
    inputs, targets = custom_collate_fn([dataset[0]])
    _, masked = custom_collate_fn([dataset[0]], mask_prompt=True)
    kept = int((masked != -100).sum())
    printed = stored_output("ch07_instruction.ipynb", "6614defe")
    assert f"Tokens: {len(ids)} of which prompt: {prompt_len}" in printed, printed
    assert f"Targets that count: {kept}" in printed, printed
    first = ", ".join(re.search(r"\[(.*?)\]", stored_output(
        "ch07_instruction.ipynb", "502da797")).group(1).split(", ")[:4])
    assert first == ", ".join(map(str, ids[:4]))
    n = len(ids)
    return digraph(f"""
  entry [label="entry 0 of instruction-data.json\\linstruction: {quoted(entry['instruction'])}\\l" +
         "input: {quoted(entry['input'])}\\loutput: {quoted(entry['output'])}\\l"];
  text [label="format_input(entry)\\l+ RESPONSE_HEADER ({quoted(RESPONSE_HEADER.strip())})\\l" +
        "+ entry[\\"output\\"]\\l", {fill("grey")}];
  ids [label="InstructionDataset: tokenize once\\n{n} token IDs [{first}, \u2026]\\n" +
       "prompt {prompt_len} + response {n - prompt_len}", {fill("purple")}];
  collate [label="custom_collate_fn\\lpad with 50256 to the longest + 1\\l" +
           "inputs = padded[:, :-1], targets = padded[:, 1:]\\l" +
           "padding targets after the first: -100\\l", {fill("orange")}];
  batch [label="inputs, targets\\n{tuple(inputs.shape)} each here\\n(one entry: a single 50256 added)", {fill("green")}];
  mask [label="optional: mask_prompt=True\\nthe first {prompt_len - 1} targets -100 too:\\n" +
        "{kept} targets count (response + end of text)", {fill("red")}, style="rounded,filled,dashed"];
  entry -> text -> ids -> collate -> batch;
  collate -> mask [style=dashed];
""", rankdir="TB", ranksep=0.3)


def draw_ch07_training_loop():
    """Section 7.6: Chapter 5's loop on the instruction batches, losses from the stored run."""
    import re
    printed = stored_output("ch07_instruction.ipynb", "9bcfa882")
    evals = re.findall(r"step (\d+)\): train loss ([\d.]+), val loss ([\d.]+)", printed)
    (s0, t0, v0), (s1, t1, v1) = evals[0], evals[-1]
    return digraph(f"""
  batch [label="batch from train_loader\\ninputs, targets (8, L)\\n-100 where padding"];
  model [label="GPTModel", {fill("teal")}];
  logits [label="logits\\n(8, L, 50257)", {fill("orange")}];
  loss [label="cross_entropy\\nskips targets = -100\\n(the same calc_loss_batch)", {fill("red")}];
  step [label="loss.backward()\\nAdamW step, lr 5e-5", {fill("green")}];
  evaluate [label="every 5 steps: train and val loss\\nstep {int(s0)}: {t0} / {v0}\\n" +
            "step {int(s1)}: {t1} / {v1}", {fill("purple")}];
  batch -> model -> logits -> loss -> step;
  step -> batch [label=" next batch", style=dashed, constraint=false];
  step -> evaluate [style=dotted];
""", rankdir="LR")


def draw_ch07_extract_response():
    """Section 7.5: how extract_response cuts the answer out of the generated text
    (schematic), ending in the stored run's first test answer."""
    import re
    printed = stored_output("ch07_instruction.ipynb", "720472a6")
    answer = re.search(r"Model response:\n>> (.*?)\n-{10}", printed, re.S).group(1)
    return digraph(f"""
  prompt [label="prompt = format_input(entry)\\n+ \\"### Response:\\" header"];
  gen [label="generate (greedy)\\nstops at <|endoftext|> (50256)", {fill("teal")}];
  text [label="generated text:\\nprompt + new tokens", {fill("grey")}];
  cut [label="starts with the prompt?\\lyes: cut the prompt off\\l" +
       "no: keep what follows the last\\l\\"### Response:\\"\\l", {fill("orange")}];
  eot [label="keep what comes before\\nthe first <|endoftext|>,\\nstrip whitespace", {fill("orange")}];
  header [label="drop a leading\\n\\"### Response:\\"", {fill("orange")}];
  answer [label="model_response\\n(stored run, test entry 1:\\n\\"{quoted(answer)}\\")", {fill("green")}];
  prompt -> gen -> text -> cut -> eot -> header -> answer;
  {{rank=same; prompt; gen; text}}
  {{rank=same; cut; eot; header}}
""", rankdir="TB", nodesep=0.4)


def draw_ch07_eval_flow():
    """Section 7.8: the three kinds of evidence, with the stored run's numbers."""
    import re

    def grab(cell, pattern):
        return re.search(pattern, stored_output("ch07_instruction.ipynb", cell)).groups()

    (answered,) = grab("720472a6", r"Answered (\d+) test")
    (n_loss,) = grab("95bf6f98", r"test loss: \d+ \d+ (\d+)")
    em, f1, rouge = grab("01bf344d", r"exact_match\s+([\d.]+)\s+token_f1\s+([\d.]+)\s+"
                                     r"rouge_l\s+([\d.]+)")
    loss_all, ppl_all = grab("aa2dbaab", r"all targets\s+[\d.]+\s+([\d.]+)\s+perplexity"
                                         r"\s+[\d.]+\s+([\d.]+)")
    loss_resp, ppl_resp = grab("aa2dbaab", r"response only\s+[\d.]+\s+([\d.]+)\s+perplexity"
                                           r"\s+[\d.]+\s+([\d.]+)")
    return digraph(f"""
  test [label="test_data\\n{answered} held-out instructions"];
  answers [label="generate_responses\\nbatches of 8, KV cache, greedy", {fill("teal")}];
  saved [label="instruction-data-with-response.json\\neach entry + \\"model_response\\"", {fill("grey")}];
  overlap [label="1. text overlap with the reference\\nexact match {em}\\ntoken F1 {f1}, ROUGE-L {rouge}", {fill("orange")}];
  loss [label="2. loss on the reference responses\\nall targets {loss_all} (perplexity {ppl_all})\\n" +
        "response only {loss_resp} (perplexity {ppl_resp})", {fill("purple")}];
  judge [label="3. a larger LLM as judge\\nscores 0-100 via Ollama\\n(no server in the stored run)", {fill("green")}];
  test -> answers -> saved;
  saved -> overlap;
  saved -> judge;
  test -> loss [label=" test_loader, test_loader_masked:\\n the first {n_loss} test examples"];
""", rankdir="LR")


FIGURES = [
    Figure("ch07_stages", "ch07_instruction.ipynb", "ff51fc4d",
           "Instruction fine-tuning is the second way of stage 3: it starts from the pretrained "
           "model of Chapter 5, like the classifier of Chapter 6, and this chapter's sections "
           "are its four steps.",
           "Three dashed groups: stage 1 with chapters 2 to 4, stage 2 pretraining in chapter "
           "5, stage 3 with the classifier of chapter 6 and instruction fine-tuning, "
           "highlighted, with this chapter's four steps beside it.", draw_ch07_stages,
           "Schematic."),
    Figure("ch07_prompt_template", "ch07_instruction.ipynb", "ee17a8fd",
           "The Alpaca template: a fixed preamble and ### headers mark where the instruction, "
           "the optional input and the response go.",
           "A formatted training example with its preamble, instruction, input and response "
           "sections highlighted in different colours.", draw_ch07_prompt_template,
           "Entry 50 of instruction-data.json through format_input."),
    Figure("ch07_data_pipeline", "ch07_instruction.ipynb", "c80d1ae9",
           "From a JSON entry to training tensors: format as a prompt, tokenize once, then "
           "let the collate function pad, shift and mark the ignored targets with -100.",
           "A top-down flow for entry 0: the entry, its formatted prompt text, its token IDs "
           "with prompt and response lengths, custom_collate_fn padding and shifting, the "
           "resulting inputs and targets, and the optional prompt mask.",
           draw_ch07_data_pipeline,
           "Entry 0 through the course's code; the lengths match the stored outputs."),
    Figure("ch07_collate", "ch07_instruction.ipynb", "ce3b9cf0",
           "custom_collate_fn pads every row to the same length, shifts the targets by one, "
           "keeps one end-of-text target and replaces the rest of the padding (and, with "
           "mask_prompt, the prompt) by -100.",
           "Three real examples as rows of coloured cells: inputs with prompt, response and "
           "padding; targets with one end-of-text and -100 padding; masked targets with -100 "
           "over the prompt too.", draw_ch07_collate,
           "custom_collate_fn on three short, real entries of instruction-data.json."),
    Figure("ch07_extract_response", "ch07_instruction.ipynb", "c027796b",
           "Generation returns the prompt too: extract_response cuts it off, stops at the "
           "first end-of-text and drops a repeated response header.",
           "A flow from the prompt through generate to the generated text, then three cutting "
           "steps of extract_response, ending in the model_response of the first test entry.",
           draw_ch07_extract_response,
           "Schematic; the answer at the end is the stored run's."),
    Figure("ch07_training_loop", "ch07_instruction.ipynb", "b1acc7d3",
           "The loop is Chapter 5's, unchanged: the -100 targets made by the collate function "
           "are simply skipped by cross_entropy.",
           "A loop from a batch of inputs and targets through GPTModel and its logits to "
           "cross_entropy that skips -100 targets, backward and an AdamW step, and back to "
           "the next batch; every 5 steps the losses are estimated.",
           draw_ch07_training_loop,
           "Losses of the first and last evaluation of the stored run."),
    Figure("ch07_eval_flow", "ch07_instruction.ipynb", "4e45b1b9",
           "Three kinds of evidence, from cheapest to most telling: overlap with the "
           "reference text, the loss on the reference answers, and a judge LLM.",
           "The test instructions are answered by generate_responses and saved as JSON; the "
           "answers feed the text-overlap metrics and the LLM judge, while the test loaders "
           "feed the loss on the reference responses.", draw_ch07_eval_flow,
           "Numbers from the stored run's outputs in Section 7.8."),
    Figure("ch07_judge_loop", "ch07_instruction.ipynb", "d8f397ad",
           "The judge loop: the fine-tuned model answers, a larger LLM grades the answer "
           "against the reference, and parse_score turns its reply into a number (or None).",
           "A loop from a test entry through the fine-tuned model, the grading prompt and "
           "the judge LLM to parse_score and the averaged scores, with sample replies and "
           "their parsed scores.", draw_ch07_judge_loop,
           "The parsed scores are parse_score's real output."),
]
