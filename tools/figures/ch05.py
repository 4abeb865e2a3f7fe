"""The figures of Chapter 5: pretraining and decoding."""

import matplotlib.pyplot as plt
import numpy as np

from tools.figures.style import (
    CH05_LOGITS, CH05_WORDS, Figure, MONO, MUTED, arrow, box, canvas, light, show_token,
    strong, tokenizer, write)


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
]
