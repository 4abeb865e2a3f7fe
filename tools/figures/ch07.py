"""The figures of Chapter 7: instruction fine-tuning."""

import json

from matplotlib.patches import FancyArrowPatch, Rectangle

from tools.figures.style import (
    Figure, INK, MONO, MUTED, arrow, blend, box, cache, canvas, data_file, show_token, strong,
    tokenizer, write)


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


FIGURES = [
    Figure("ch07_prompt_template", "ch07_instruction.ipynb", "ee17a8fd",
           "The Alpaca template: a fixed preamble and ### headers mark where the instruction, "
           "the optional input and the response go.",
           "A formatted training example with its preamble, instruction, input and response "
           "sections highlighted in different colours.", draw_ch07_prompt_template,
           "Entry 50 of instruction-data.json through format_input."),
    Figure("ch07_collate", "ch07_instruction.ipynb", "ce3b9cf0",
           "custom_collate_fn pads every row to the same length, shifts the targets by one, "
           "keeps one end-of-text target and replaces the rest of the padding (and, with "
           "mask_prompt, the prompt) by -100.",
           "Three real examples as rows of coloured cells: inputs with prompt, response and "
           "padding; targets with one end-of-text and -100 padding; masked targets with -100 "
           "over the prompt too.", draw_ch07_collate,
           "custom_collate_fn on three short, real entries of instruction-data.json."),
    Figure("ch07_judge_loop", "ch07_instruction.ipynb", "d8f397ad",
           "The judge loop: the fine-tuned model answers, a larger LLM grades the answer "
           "against the reference, and parse_score turns its reply into a number (or None).",
           "A loop from a test entry through the fine-tuned model, the grading prompt and "
           "the judge LLM to parse_score and the averaged scores, with sample replies and "
           "their parsed scores.", draw_ch07_judge_loop,
           "The parsed scores are parse_score's real output."),
]
