"""The figures of Chapter 5: pretraining and decoding."""

import ast
import re

import matplotlib.pyplot as plt
import numpy as np

from tools.figures.style import (
    CH05_LOGITS, CH05_WORDS, Figure, MONO, MUTED, arrow, box, canvas, data_file, digraph, fill,
    light, matrix, show_token, stored_output, strong, tokenizer, write)


def draw_ch05_shifted_targets():
    tok = tokenizer()
    ids = tok.encode("I had always thought")
    pieces = [show_token(tok.decode([i])) for i in ids]
    inputs, targets = ids[:-1], ids[1:]
    fig, ax = canvas(9.0, 3.6)
    cell = 1.55
    x0 = 2.2
    write(ax, 0.2, 3.3, "text", size=10.5, ha="left", weight="bold")
    for k, (p, i) in enumerate(zip(pieces, ids)):
        box(ax, x0 + k * cell, 3.05, cell - 0.1, 0.45, f"{p}  {i}", "grey", fill="white",
            fontsize=9.5, family=MONO)
    write(ax, 0.2, 2.15, "inputs", size=10.5, ha="left", weight="bold", color=strong("blue"))
    write(ax, 0.2, 0.95, "targets", size=10.5, ha="left", weight="bold",
          color=strong("green"))
    for k in range(len(inputs)):
        box(ax, x0 + k * cell, 1.9, cell - 0.1, 0.45, f"{pieces[k]}  {inputs[k]}", "blue",
            fontsize=9.5, family=MONO)
        box(ax, x0 + (k + 1) * cell, 0.7, cell - 0.1, 0.45, f"{pieces[k + 1]}  {targets[k]}",
            "green", fontsize=9.5, family=MONO)
        arrow(ax, (x0 + k * cell + cell / 2, 1.88), (x0 + (k + 1) * cell + cell / 2 - 0.05, 1.17),
              color=MUTED, lw=1.2)
    write(ax, 0.2, 1.53, "each input position\npredicts the next token", size=9,
          ha="left", color=MUTED)
    write(ax, 0.2, 0.25, "inputs = ids[:-1], targets = ids[1:]: position i is trained to predict "
          "token i + 1 (GPT-2 token IDs via tiktoken).", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch05_training_loop():
    fig, ax = canvas(9.8, 5.6)
    cx, cy, rx, ry = 3.85, 2.85, 2.55, 1.95
    steps = [
        ("next batch\n(input_batch, target_batch)", "blue"),
        ("forward pass\nlogits = model(input_batch)", "orange"),
        ("loss = cross_entropy(\nlogits, target_batch)", "red"),
        ("loss.backward():\ngradient of every weight", "purple"),
        ("optimizer.step()\noptimizer.zero_grad()", "green"),
    ]
    angles = np.deg2rad(90 - np.arange(len(steps)) * 72)
    bw, bh = 2.2, 0.72
    for (label, color), a in zip(steps, angles):
        px, py = cx + rx * np.cos(a), cy + ry * np.sin(a)
        box(ax, px - bw / 2, py - bh / 2, bw, bh, label, color, fontsize=9.5)
    for k in range(len(steps)):
        mid = angles[k] - np.deg2rad(36)
        a0, a1 = mid + np.deg2rad(13), mid - np.deg2rad(13)
        p0 = (cx + rx * 1.08 * np.cos(a0), cy + ry * 1.08 * np.sin(a0))
        p1 = (cx + rx * 1.08 * np.cos(a1), cy + ry * 1.08 * np.sin(a1))
        arrow(ax, p0, p1, rad=-0.2, lw=1.8)
    write(ax, cx, cy + 0.2, "one training step", size=11.5, weight="bold")
    write(ax, cx, cy - 0.2, "repeated for every batch", size=9.5, color=MUTED)
    box(ax, 7.55, 3.35, 2.15, 1.1, "every eval_freq steps:\nevaluate_model \u2192\ntrain "
        "and val loss", "teal", fontsize=9.5)
    box(ax, 7.55, 1.75, 2.15, 1.1, "after each epoch:\nprint a sample\n(greedy, 50 tokens)",
        "grey", fontsize=9.5)
    write(ax, 8.62, 4.95, "one epoch = one pass\nover train_loader", size=9.5, color=MUTED)
    write(ax, 0.2, 0.2, "train_model_simple: each turn of the cycle moves all weights a "
          "little downhill on one batch's loss.", size=9.5, ha="left", color=MUTED)
    return fig


def _filtered(logits, temperature=1.0, top_k=None, top_p=None):
    """The distribution sample_next_token (Chapter 5) samples from, for a 1-D logits list."""
    import torch
    x = torch.tensor(logits, dtype=torch.float64) / temperature
    if top_k is not None:
        kth = torch.topk(x, top_k).values[-1]
        x = x.masked_fill(x < kth, float("-inf"))
    if top_p is not None:
        sorted_x, idx = torch.sort(x, descending=True)
        p = torch.softmax(sorted_x, dim=-1)
        before = torch.cumsum(p, -1) - p
        drop = torch.zeros_like(x, dtype=torch.bool)
        drop[idx] = before >= top_p
        x = x.masked_fill(drop, float("-inf"))
    return torch.softmax(x, dim=-1).numpy()


def draw_ch05_decoding():
    logits = np.array(CH05_LOGITS)
    order = np.argsort(-logits)
    words = [CH05_WORDS[i] for i in order]
    base = _filtered(CH05_LOGITS)[order]
    panels = [
        ("temperature 1 (plain softmax)", dict(), "blue"),
        ("temperature 0.5: sharper", dict(temperature=0.5), "orange"),
        ("temperature 2: flatter", dict(temperature=2.0), "orange"),
        ("top-k = 3: keep the 3 best", dict(top_k=3), "green"),
        ("top-p = 0.9: smallest set with mass \u2265 0.9", dict(top_p=0.9), "green"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(9.8, 5.8), sharey=True)
    xs = np.arange(len(words))
    for axis, (title, kw, color) in zip(axes.flat, panels):
        probs = _filtered(CH05_LOGITS, **kw)[order]
        if kw:
            axis.bar(xs, base, 0.75, facecolor="none", edgecolor=strong("grey"), ls="--",
                     lw=1.0, label="temperature 1")
        kept = probs > 0
        axis.bar(xs[kept], probs[kept], 0.55, color=light(color), edgecolor=strong(color))
        for k in xs[~kept]:
            axis.text(k, 0.02, "\u00d7", ha="center", fontsize=12, color=strong("red"))
        for k in xs[kept]:
            axis.text(k, probs[k] + 0.015, f"{probs[k]:.2f}", ha="center", fontsize=7.5)
        axis.set_title(title, fontsize=10, weight="bold")
        axis.set_xticks(xs, words, rotation=45, ha="right", fontsize=9)
        axis.set_ylim(0, 1.0)
    axes[0, 0].set_ylabel("probability")
    axes[1, 0].set_ylabel("probability")
    axes[0, 1].legend(fontsize=8, frameon=False, loc="upper right")
    note = axes[1, 2]
    note.axis("off")
    note.text(0.0, 0.95, "sample_next_token, in order:\n\n1. logits / temperature\n"
              "2. top-k: others \u2192 \u2212\u221e\n3. top-p: others \u2192 \u2212\u221e\n"
              "4. softmax, then draw\n   one token\n\n\u00d7 = can no longer be drawn\n"
              "dashed = temperature 1", fontsize=9.5, va="top", transform=note.transAxes)
    fig.text(0.01, 0.01, "The eight next-word logits of Section 5.6 (\u201cTomorrow will be "
             "\u2026\u201d), sorted; filtered as in the course's sample_next_token.",
             fontsize=9, color=MUTED)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


NB = "ch05_pretraining.ipynb"
TRAIN_RATIO = 0.90  # the notebook's train_ratio (Section 5.3); checked against its printed counts


def _numbers(cell, pattern=r"-?\d[\d,]*\.?\d*(?:e-?\d+)?"):
    """The numbers a cell printed in the stored run, in order."""
    return [float(v.replace(",", "")) for v in re.findall(pattern, stored_output(NB, cell))]


def draw_ch05_loss_steps():
    """Section 5.2's six positions, with the numbers its stored run printed."""
    printed = stored_output(NB, "96971ebd")
    shape = re.search(r"Size\(\[(.*?)\]\)", printed).group(1)
    probas = np.array(_numbers("96971ebd", r"\d\.\d+e-\d+")).reshape(2, 3)
    logs = _numbers("35ae3ae9", r"-?\d+\.\d+")
    log_probas, mean, loss = np.array(logs[:6]).reshape(2, 3), logs[6], logs[7]
    pairs = [ast.literal_eval(line.split("predict: ")[1]) for line in
             stored_output(NB, "93c1c69d").splitlines() if "predict:" in line]
    fig, ax = canvas(9.8, 5.1)
    cell, mx, top = 0.82, 4.8, 4.6
    box(ax, 0.2, top - 0.9, 1.5, 0.8, f"logits\n({shape})", "orange", fontsize=10)
    arrow(ax, (1.7, top - 0.5), (2.4, top - 0.5))
    write(ax, 2.05, top - 0.3, "softmax", size=9.5, color=MUTED)
    box(ax, 2.45, top - 0.9, 1.5, 0.8, f"probabilities\n({shape})", "blue", fontsize=10)
    arrow(ax, (3.95, top - 0.5), (mx - 0.1, top - 0.5))
    write(ax, 4.37, top - 0.3, "gather", size=9.5, color=MUTED)
    matrix(ax, mx, top, probas, cell=cell, color="blue", fmt="{:.2e}", fontsize=9,
           title="probability of each target")
    for r, p in enumerate(pairs):  # which next token each row's three cells score
        write(ax, mx + 3 * cell + 0.12, top - (r + 0.5) * cell, "targets: " +
              " ".join(show_token(t) for _, t in p), size=9, ha="left", family=MONO,
              color=MUTED)
    low = top - 2 * cell - 0.45
    arrow(ax, (mx + 1.5 * cell, top - 2 * cell), (mx + 1.5 * cell, low))
    write(ax, mx + 1.5 * cell + 0.12, low + 0.22, "log", size=9.5, ha="left", color=MUTED)
    matrix(ax, mx, low, log_probas, cell=cell, color="purple", fmt="{:.4f}", fontsize=9)
    mid = low - cell
    arrow(ax, (mx - 0.1, mid), (3.95, mid))
    write(ax, 4.37, mid + 0.3, "mean of\nall six", size=9.5, color=MUTED)
    box(ax, 2.45, mid - 0.35, 1.5, 0.7, f"{mean:.4f}", "purple", fontsize=11, family=MONO)
    arrow(ax, (2.45, mid), (1.7, mid))
    write(ax, 2.07, mid + 0.22, "\u00d7 \u22121", size=9.5, color=MUTED)
    box(ax, 0.2, mid - 0.4, 1.5, 0.8, f"loss\n{loss:.4f}", "red", fontsize=11, weight="bold")
    write(ax, 0.2, 0.3, f"cross_entropy(logits_flat, targets_flat) gives the same {loss:.4f}: "
          "it does all of these steps in one call, from the raw logits.", size=9.5, ha="left")
    write(ax, 0.2, 0.02, "Numbers from the stored run of Section 5.2 (untrained model, two "
          "snippets, three positions each).", size=9, ha="left", color=MUTED)
    return fig


def draw_ch05_perplexity():
    """Perplexity = exp(loss), with the losses the chapter prints."""
    untrained, uniform = _numbers("297bc052", r"tensor\((\d+\.\d+)\)")[0], _numbers("875da443")[1]
    perplexity = _numbers("875da443")[0]
    last = re.search(r"Last evaluation:\s+train (\d+\.\d+), val (\d+\.\d+)",
                     stored_output(NB, "f2c9c706"))
    train, val = float(last.group(1)), float(last.group(2))
    fig, ax = plt.subplots(figsize=(9.0, 4.2))
    loss = np.linspace(0, 11.5, 300)
    ax.plot(loss, np.exp(loss), color=strong("grey"), lw=2)
    points = [(0.0, 1.0, "perfect model: loss 0, perplexity 1", "green", (1.2, 0.7)),
              (train, np.exp(train), f"after training, train loss {train}: \u2248 "
               f"{np.exp(train):.1f}", "green", (1.2, 1.3)),
              (val, np.exp(val), f"after training, val loss {val}: \u2248 {np.exp(val):,.0f}",
               "orange", (7.0, 60)),
              (uniform, np.exp(uniform), f"uniform guess: ln(50,257) = {uniform}", "grey",
               (7.9, 2e3)),
              (untrained, perplexity, f"untrained: loss {untrained}, perplexity "
               f"{perplexity:,.0f}", "red", (3.4, 1.2e5))]
    for x, y, label, color, at in points:
        ax.plot(x, y, "o", color=strong(color), ms=7)
        ax.annotate(label, (x, y), at, fontsize=9.5, color=strong(color),
                    arrowprops=dict(arrowstyle="-", color=MUTED, lw=0.8))
    ax.set_yscale("log")
    ax.set_ylim(0.45, 4e5)
    ax.set_xlabel("cross-entropy loss (nats per token)")
    ax.set_ylabel("perplexity = exp(loss), log scale")
    ax.set_title("Perplexity: how many tokens the model is as unsure between", fontsize=11,
                 weight="bold")
    fig.tight_layout()
    return fig


def draw_ch05_train_val_split():
    text = data_file("the-verdict.txt").read_text(encoding="utf-8")
    tok = tokenizer()
    split = int(TRAIN_RATIO * len(text))
    parts = [(text[:split], "training", "blue"), (text[split:], "validation", "green")]
    counts = [len(tok.encode(p)) for p, _, _ in parts]
    printed = _numbers("a5197254")
    assert counts == printed, (counts, printed)  # the notebook's train_ratio is still 0.90
    total = len(tok.encode(text))
    word = re.search(r"\w+$", text[:split]).group() + re.match(r"\w*", text[split:]).group()
    fig, ax = canvas(9.8, 2.6)
    x0, width = 0.2, 9.4
    at = x0 + width * split / len(text)
    for (part, name, color), n, (a, b) in zip(parts, counts, [(x0, at), (at, x0 + width)]):
        box(ax, a, 1.2, b - a, 0.6, "", color, rounding=0.02)
        write(ax, (a + b) / 2, 1.5, f"{name}: {len(part):,} characters, {n:,} tokens"
              if name == "training" else f"{name}\n{len(part):,} ch.", size=10 if
              name == "training" else 9, weight="bold", color=strong(color))
    write(ax, at + 0.5, 0.95, f"validation: {counts[1]:,} tokens", size=9.5, ha="right",
          color=strong("green"))
    ax.plot([at, at], [1.05, 2.0], color=strong("red"), lw=1.6, ls="--")
    write(ax, at, 2.15, f"cut at character int({TRAIN_RATIO} \u00d7 {len(text):,}) = "
          f"{split:,}", size=9.5, ha="right", color=strong("red"))
    write(ax, x0, 2.45, f"The Verdict: {len(text):,} characters, {total:,} tokens", size=10.5,
          ha="left", weight="bold")
    write(ax, x0, 0.55, f"{counts[0]:,} + {counts[1]:,} = {sum(counts):,} tokens, one more than "
          f"the whole text's {total:,}: the cut falls inside \u201c{word}\u201d,", size=9.5,
          ha="left")
    write(ax, x0, 0.25, "whose two halves are tokenized separately. The validation part is "
          "never trained on.", size=9.5, ha="left")
    return fig


def draw_ch05_batches():
    from previous_chapters import GPTDatasetV1
    text = data_file("the-verdict.txt").read_text(encoding="utf-8")
    tok = tokenizer()
    split = int(TRAIN_RATIO * len(text))
    T = 256  # the notebook's context_length (and stride) in the full run
    parts = [(text[:split], "training", "blue"), (text[split:], "validation", "green")]
    printed = _numbers("68c1db46")  # batches and input tokens of each loader
    fig, ax = canvas(9.8, 2.9)
    scale = 9.3 / sum(len(tok.encode(p)) for p, _, _ in parts)  # inches per token
    x = 0.25
    for (part, name, color), (n_batches, n_inputs) in zip(parts, [printed[:2], printed[2:]]):
        n = len(tok.encode(part))
        windows = len(GPTDatasetV1(part, tok, T, T))
        assert windows * T == n_inputs, (name, windows, n_inputs)
        for k in range(windows):
            box(ax, x + k * T * scale, 1.3, T * scale - 0.03, 0.55, str(k + 1), color,
                fontsize=9, rounding=0.03)
        rest = x + windows * T * scale
        box(ax, rest, 1.3, (n - windows * T) * scale, 0.55, "", "grey", fill="white",
            ls="--", lw=1.0, rounding=0.01)
        train, end = name == "training", rest + (n - windows * T) * scale
        write(ax, x if train else end, 2.1 if train else 1.0, f"{name}: {windows} windows of "
              f"{T} = {int(n_inputs):,} input tokens, {int(n_batches)} batch"
              f"{'es' if train else ''} of 2", size=9.5, ha="left" if train else "right",
              weight="bold", color=strong(color))
        write(ax, rest if train else end + 0.06, 2.05 if train else 1.57,
              f"{n - windows * T} left", size=9, ha="center" if train else "left", color=MUTED)
        x = end + 0.15
    write(ax, 0.25, 2.55, "Each window is an input; its targets are the same tokens moved one "
          "to the right (so a window needs one token more).", size=9.5, ha="left")
    write(ax, 0.25, 0.55, "Training windows are shuffled into new pairs every epoch "
          "(drop_last: no half batch); validation keeps them in order.", size=9.5,
          ha="left")
    write(ax, 0.25, 0.2, "Windows of GPTDatasetV1 (stride = context_length = 256) on the two "
          "parts; counts as printed above.", size=9, ha="left", color=MUTED)
    return fig


def draw_ch05_schedule():
    """The stored training run: 10 epochs of 9 steps, evaluated every eval_freq = 5 steps."""
    printed = stored_output(NB, "76fb3d95")
    evals = [(int(e), int(s), float(t), float(v)) for e, s, t, v in re.findall(
        r"Epoch (\d+) \(step (\d+)\): train loss (\d+\.\d+), val loss (\d+\.\d+)", printed)]
    epochs = max(e for e, *_ in evals)
    per_epoch = int(_numbers("68c1db46")[0])  # training batches: optimizer steps per epoch
    fig, ax = canvas(9.8, 3.2)
    step_w, x0, y = 0.1, 0.4, 1.5
    for e in range(epochs):
        left = x0 + e * per_epoch * step_w
        box(ax, left, y, per_epoch * step_w - 0.04, 0.45, "", "blue" if e % 2 == 0 else
            "purple", rounding=0.02, lw=1.0)
        write(ax, left + per_epoch * step_w / 2, y + 0.22, f"epoch {e + 1}", size=9)
        write(ax, left + per_epoch * step_w - 0.02, y - 0.12, "\u25c6", size=9,
              color=strong("grey"))
    for _, s, t, v in evals:
        sx = x0 + (s + 0.5) * step_w
        ax.plot([sx, sx], [y + 0.45, y + 0.8], color=strong("orange"), lw=1.4)
        ax.plot(sx, y + 0.85, "v", color=strong("orange"), ms=6)
    first, best = evals[0], min(evals, key=lambda ev: ev[3])
    for _, s, t, v in [first, best, evals[-1]]:
        write(ax, x0 + (s + 0.5) * step_w, y + 1.1, f"step {s}\ntrain {t}\nval {v}",
              size=9, color=strong("orange"), va="bottom")
    write(ax, x0, 0.95, f"{per_epoch} steps (batches) per epoch, {epochs * per_epoch} in all; "
          "\u25bc evaluation every eval_freq = 5 steps, counted across epochs; "
          "\u25c6 a printed sample after each epoch", size=9.5, ha="left")
    write(ax, x0, 0.6, "so some epochs hold one evaluation and others two.", size=9.5,
          ha="left")
    write(ax, x0, 0.25, f"The stored run above: {len(evals)} evaluations; shown: the first, the "
          "lowest validation loss and the last.", size=9, ha="left", color=MUTED)
    return fig


def draw_ch05_sampling_loop():
    """Chapter 4's loop (grey: unchanged) with generate's new choice of the next token."""
    same = fill("grey")
    return digraph(f"""
  context [label="token IDs\\n(the last context_size)", {same}];
  model [label="GPTModel", {same}];
  last [label="last position's logits", {same}];
  greedy [label="temperature 0?", shape=diamond, style="filled", {fill("orange")}];
  argmax [label="argmax\\n(as in Chapter 4)", {same}];
  temp [label="logits / temperature", {fill("orange")}];
  topk [label="top-k: all but the\\nk best \u2192 \u2212inf", {fill("green")}];
  topp [label="top-p: outside the\\nsmallest set \u2265 p \u2192 \u2212inf", {fill("green")}];
  draw [label="softmax, then draw\\none ID (multinomial)", {fill("green")}];
  eos [label="eos_id?", shape=diamond, style="filled", {fill("red")}];
  stop [label="stop\\n(eos not appended)", {fill("red")}];
  context -> model -> last -> greedy;
  greedy -> argmax [label=" yes"];
  greedy -> temp [label=" no"];
  argmax -> temp [style=invis];
  temp -> topk -> topp -> draw;
  {{rank=same; argmax; temp; topk; topp; draw;}}
  argmax -> eos;
  draw -> eos;
  eos -> stop [label=" yes"];
  eos -> context [label=" no: append, repeat", style=dashed, constraint=false];
""", rankdir="TB", ranksep=0.3)


def draw_ch05_checkpoint():
    """The round trip of Section 5.7, with the counts its stored run printed."""
    tensors = int(_numbers("dd10453f")[0])
    steps = int(_numbers("4af26c82")[0])
    entries = re.search(r"Entries: \[(.*?)\]", stored_output(NB, "09c576b7")).group(1)
    entries = entries.replace("'", "").replace(", ", ",\\n")  # one DOT line per entry
    return digraph(f"""
  config [label="cfg\\n(the model's sizes)", {fill("grey")}];
  weights [label="model.state_dict()\\n{tensors} tensors", {fill("blue")}];
  opt [label="optimizer.state_dict()\\nAdamW's 2 running averages\\nper weight, step count", {fill("purple")}];
  file [label="save_gpt_checkpoint\\n\u2192 one file\\n{{{entries}}}", shape=folder, style="filled", {fill("orange")}];
  rebuild [label="load_gpt_checkpoint:\\nGPTModel(config),\\nload_state_dict", {fill("blue")}];
  resume [label="fresh AdamW\\n.load_state_dict\\n\u2192 continues at step {steps}", {fill("purple")}];
  use [label="generate\\n(eval mode)", {fill("green")}];
  train [label="train on\\n(after .train())", {fill("green")}];
  config -> file; weights -> file; opt -> file;
  file -> rebuild; file -> resume;
  rebuild -> use; rebuild -> train; resume -> train;
""", rankdir="LR", ranksep=0.45)


def draw_ch05_kv_cache():
    tok = tokenizer()
    prompt = [show_token(tok.decode([i])) for i in tok.encode("I had always thought")]
    fig, ax = canvas(9.8, 6.1)
    cell = 0.78
    x0 = 1.2
    steps = [(prompt, len(prompt)), (prompt + ["new\u2081"], 1),
             (prompt + ["new\u2081", "new\u2082"], 1)]
    top = 5.85
    for s, (toks, n_new) in enumerate(steps):
        y = top - s * 1.8
        n = len(toks)
        label = ("prompt: fed once, all 4 positions computed and cached" if s == 0 else
                 f"generation step {s}: only the newest token goes through the model")
        write(ax, 0.15, y - 0.05, label, size=10.5, ha="left", weight="bold")
        for k, t in enumerate(toks):
            new = k >= n - n_new
            cx = x0 + k * cell
            box(ax, cx, y - 0.65, cell - 0.08, 0.38, t, "blue" if new else "grey", fontsize=8.5,
                family=MONO, fill=None if new else "white", lw=1.0)
            for r, (name, color) in enumerate([("k", "purple"), ("v", "green")]):
                yy = y - 1.05 - r * 0.36
                if new:
                    box(ax, cx, yy, cell - 0.08, 0.3, f"{name}{k + 1}", color, fontsize=8.5,
                        lw=1.0)
                else:
                    box(ax, cx, yy, cell - 0.08, 0.3, f"{name}{k + 1}", "grey", fontsize=8.5,
                        ls="--", lw=1.0, text_color=MUTED)
        write(ax, x0 - 0.1, y - 0.9, "keys", size=8.5, ha="right", color=strong("purple"))
        write(ax, x0 - 0.1, y - 1.26, "values", size=8.5, ha="right", color=strong("green"))
        if s > 0:
            write(ax, x0 + n * cell + 0.1, y - 0.46, f"\u2190 query q{n} attends to "
                  f"k1\u2026k{n} and v1\u2026v{n}", size=9.5, ha="left",
                  color=strong("orange"))
    box(ax, 5.55, 0.12, 0.4, 0.26, "", "grey", ls="--", lw=1.0)
    write(ax, 6.05, 0.25, "read from the cache", size=9, ha="left")
    box(ax, 7.75, 0.12, 0.4, 0.26, "", "purple", lw=1.0)
    write(ax, 8.25, 0.25, "computed now", size=9, ha="left")
    write(ax, 0.15, 0.25, "Keys and values of old tokens never change\n(causal mask), so each "
          "step reuses them.", size=9, ha="left", color=MUTED)
    return fig


FIGURES = [
    Figure("ch05_shifted_targets", "ch05_pretraining.ipynb", "6d3d9262",
           "The targets are the inputs shifted by one token: every position learns to "
           "predict the token that follows it.",
           "The tokens of I had always thought; the inputs are the first three, the targets "
           "the last three, with arrows from each input to the next token.",
           draw_ch05_shifted_targets,
           "GPT-2 token IDs from tiktoken."),
    Figure("ch05_training_loop", "ch05_pretraining.ipynb", "3f0c3a84",
           "One training step is a cycle of batch, forward pass, loss, backward pass and "
           "optimizer step, with regular evaluation on the side.",
           "A cycle of five steps: next batch, forward pass, cross-entropy loss, "
           "loss.backward, optimizer step and zero_grad; side notes for evaluation and "
           "samples.", draw_ch05_training_loop),
    Figure("ch05_decoding", "ch05_pretraining.ipynb", "5e8d6cb7",
           "Temperature reshapes the whole distribution; top-k and top-p cut off its tail "
           "before sampling (the dashed bars show the original).",
           "Bar charts of the probabilities of eight weather words under temperature 1, 0.5 "
           "and 2, top-k 3 and top-p 0.9.", draw_ch05_decoding,
           "The toy logits of Section 5.6, filtered as sample_next_token does."),
    Figure("ch05_kv_cache", "appendix_d_speed.ipynb", "560fcd05",
           "With a KV cache, each step computes the key and value of the new token only and "
           "reuses the cached ones of all earlier tokens.",
           "Three generation steps: the prompt's keys and values are computed once; at each "
           "later step only the new token's key and value are new, the rest come from the "
           "cache.", draw_ch05_kv_cache),
    Figure("ch05_loss_steps", NB, "35ae3ae9",
           "Cross-entropy in four steps: softmax, pick each target's probability, take logs, "
           "average and flip the sign; tiny probabilities become a loss near 11.",
           "Logits of shape (2, 3, 50257) go through softmax; the six target probabilities "
           "form a 2 by 3 matrix, their logs another, whose mean times minus one is the loss.",
           draw_ch05_loss_steps, "Numbers from the stored run of the cells above."),
    Figure("ch05_perplexity", NB, "875da443",
           "Perplexity is exp(loss): the untrained model is as unsure as a uniform guess over "
           "the whole vocabulary, training brings it down by orders of magnitude.",
           "The curve perplexity = exp(loss) on a log scale, with points for a perfect model, "
           "the trained model's training and validation loss, a uniform guess and the "
           "untrained model.", draw_ch05_perplexity,
           "Losses and perplexity as printed in this notebook's stored run (the trained ones "
           "in Section 5.5)."),
    Figure("ch05_train_val_split", NB, "a5197254",
           "The first 90% of the characters train the model, the last 10% only measure it; "
           "the cut is by characters, so the token counts are only about 90/10.",
           "A bar for The Verdict's 20,479 characters, cut at character 18,431 into a "
           "training part of 4,612 tokens and a validation part of 534 tokens.",
           draw_ch05_train_val_split,
           "The Verdict, GPT-2 tokens; counts match the cell above."),
    Figure("ch05_batches", NB, "82b6d553",
           "The loaders cut each part into windows of 256 tokens; the few tokens left at the "
           "end of each part are never used as inputs.",
           "Eighteen numbered training windows and two validation windows of 256 tokens each, "
           "with the leftover tokens of each part drawn dashed.", draw_ch05_batches,
           "GPTDatasetV1 on the two parts of The Verdict; counts as printed above."),
    Figure("ch05_schedule", NB, "76fb3d95",
           "One epoch is 9 steps here; the model is evaluated every 5 steps across epoch "
           "boundaries and prints a sample at the end of every epoch.",
           "A timeline of 10 epochs of 9 steps with evaluation markers every 5 steps, sample "
           "markers at the end of each epoch, and the first, best and last losses.",
           draw_ch05_schedule, "Steps and losses from the stored run of the cell above."),
    Figure("ch05_sampling_loop", NB, "276b70fe",
           "The generation loop of Chapter 4 again (grey); what changes is only how the next "
           "ID is chosen, and that an end token can stop the loop.",
           "A loop: token IDs, GPTModel, last logits; temperature 0 leads to argmax, otherwise "
           "divide by the temperature, apply top-k and top-p and draw a token; an eos_id "
           "check stops the loop or appends the token and repeats.",
           draw_ch05_sampling_loop, "Schematic of generate and sample_next_token."),
    Figure("ch05_checkpoint", NB, "4af26c82",
           "A checkpoint keeps the configuration, the weights and the optimizer state in one "
           "file, enough to rebuild the model and to continue training where it stopped.",
           "Configuration, model state_dict and optimizer state_dict go into one checkpoint "
           "file; loading it rebuilds GPTModel and a fresh AdamW that continues at the saved "
           "step.", draw_ch05_checkpoint,
           "Tensor and step counts from the stored run of Section 5.7."),
]
