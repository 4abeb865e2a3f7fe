"""The figures of Chapter 6: fine-tuning for classification."""

import io
import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from tools.figures.style import (
    Figure, INK, MONO, MUTED, arrow, box, cache, canvas, data_file, digraph, fill, gpt_on_meta,
    light, param_count, show_token, stored_output, strong, tokenizer, write)

NB = "ch06_classification.ipynb"


def draw_ch06_last_token():
    """The causal mask of "Do you have time" and the scores the stored run printed."""
    printed = stored_output(NB, "3d5799e5")
    scores = [float(v) for v in re.search(r"tensor\(\[\[(.*?)\]\]\)", printed).group(1).split(",")]
    shape = re.search(r"outputs: torch.Size\(\[(.*?)\]\)", stored_output(NB, "90c358e9")).group(1)
    tok = tokenizer()
    ids = tok.encode("Do you have time")
    pieces = [show_token(tok.decode([i])) for i in ids]
    n = len(ids)
    fig, ax = canvas(9.8, 4.8)
    cell = 0.55
    top = 3.55
    x1 = 1.8
    visible = np.tril(np.ones((n, n)))
    for i in range(n):
        for j in range(n):
            last = i == n - 1
            if visible[i, j]:
                face = strong("green") if last else light("orange")
            else:
                face = light("grey")
            ax.add_patch(Rectangle((x1 + j * cell, top - (i + 1) * cell), cell, cell,
                                   facecolor=face, edgecolor="white", lw=1.5,
                                   hatch=None if visible[i, j] else "///"))
        write(ax, x1 - 0.1, top - (i + 0.5) * cell, pieces[i], size=9.5, ha="right",
              family=MONO, weight="bold" if i == n - 1 else "normal")
        write(ax, x1 + (i + 0.5) * cell, top + 0.12, pieces[i], size=9, rotation=45,
              ha="left", va="bottom", rotation_mode="anchor", family=MONO)
    write(ax, x1 + n * cell / 2, top + 0.85, "who sees whom (causal mask)", size=10.5,
          weight="bold")
    write(ax, x1 + n * cell / 2, top - n * cell - 0.3, "rows: token  \u00b7  columns: tokens it "
          "can attend to", size=9, color=MUTED)
    # outputs: only the last row was printed (and only it is used)
    x2 = 5.3
    write(ax, x2 + 0.9, top + 0.85, f"model outputs ({shape})", size=10.5, weight="bold")
    write(ax, x2 + 0.45, top + 0.2, "not spam", size=9, color=MUTED)
    write(ax, x2 + 1.35, top + 0.2, "spam", size=9, color=MUTED)
    for i in range(n):
        last = i == n - 1
        for j in range(2):
            box(ax, x2 + j * 0.9, top - (i + 1) * cell + 0.05, 0.85, cell - 0.1,
                f"{scores[j]:.4f}" if last else "\u00b7", "green" if last else "grey",
                fontsize=9.5, family=MONO, fill=None if last else "white",
                text_color=INK if last else MUTED)
        arrow(ax, (x1 + n * cell + 0.1, top - (i + 0.5) * cell), (x2 - 0.1, top - (i + 0.5) * cell),
              color=strong("green") if last else light("grey"), lw=1.6 if last else 1.0)
    write(ax, x2 + 1.95, top - (n - 0.5) * cell, "\u2190 outputs[:, -1, :]\n     the only row "
          "used", size=9.5, ha="left", color=strong("green"))
    write(ax, x2 + 1.95, top - 0.5 * cell, "\u2190 saw only \u201cDo\u201d", size=9.5,
          ha="left", color=MUTED)
    write(ax, 0.2, 0.5, "Only the last token has attended to the whole message, so its two "
          "scores decide the class.", size=10, ha="left")
    write(ax, 0.2, 0.2, "Last row: the scores the stored run prints in the cell below "
          "(head just added, untrained); the other rows are not printed.", size=9.5,
          ha="left", color=MUTED)
    return fig


def draw_ch06_trainable():
    import torch

    from previous_chapters import add_classification_head, gpt2_config
    model = gpt_on_meta(gpt2_config("gpt2-small (124M)"))
    with torch.device("meta"):
        add_classification_head(model, 2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = param_count(model)
    n_layers = len(model.trf_blocks)
    fig, ax = canvas(9.4, 5.9)
    cx, w = 4.0, 3.6
    x = cx - w / 2

    def part(y, h, label, trained, params):
        color = "green" if trained else "grey"
        box(ax, x, y, w, h, label, color, fontsize=10, ls="-" if trained else "--",
            text_color=INK if trained else MUTED)
        write(ax, x + w + 0.25, y + h / 2, f"{params:,}", size=9.5, ha="left", family=MONO,
              color=strong(color))
        write(ax, x - 0.25, y + h / 2, "trained" if trained else "frozen", size=9.5,
              ha="right", color=strong(color), weight="bold" if trained else "normal")

    write(ax, x + w + 0.25, 5.65, "parameters", size=9.5, ha="left", weight="bold")
    write(ax, x - 0.25, 5.65, "requires_grad", size=9.5, ha="right", weight="bold")
    part(5.0, 0.4, "token + position embeddings", False,
         param_count(model.tok_emb) + param_count(model.pos_emb))
    yb = 4.85
    h = 0.32
    for k in [0, 1, None, n_layers - 2, n_layers - 1]:
        if k is None:
            write(ax, cx, yb - 0.15, "\u22ee", size=14, color=MUTED)
            yb -= 0.38
            continue
        part(yb - h, h, f"transformer block {k + 1}", k == n_layers - 1,
             param_count(model.trf_blocks[k]))
        yb -= h + 0.08
    part(yb - 0.4, 0.4, "final LayerNorm", True, param_count(model.final_norm))
    yb -= 0.48
    part(yb - 0.45, 0.45, "new out_head: Linear(768 \u2192 2)", True,
         param_count(model.out_head))
    yb -= 0.5
    write(ax, 0.3, yb - 0.35, f"trained: {trainable:,} of {total:,} parameters "
          f"({100 * trainable / total:.1f}%)", size=10.5, ha="left")
    write(ax, 0.3, yb - 0.7, "add_classification_head sets requires_grad = False everywhere, "
          "then True for the last block, the final norm", size=9.5, ha="left", color=MUTED)
    write(ax, 0.3, yb - 0.98, "and the new head (GPT-2 small, counted on PyTorch's meta "
          "device).", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch06_lora():
    import torch

    from previous_chapters import LinearWithLoRA
    d, r, alpha = 768, 16, 16
    with torch.device("meta"):
        wrapped = LinearWithLoRA(torch.nn.Linear(d, d), rank=r, alpha=alpha)
    n_w = wrapped.linear.weight.numel()
    n_a, n_b = wrapped.lora.A.numel(), wrapped.lora.B.numel()
    fig, ax = canvas(9.6, 5.9)
    side, thin = 2.2, 0.2
    wx, wy = 2.4, 3.0
    box(ax, 0.2, 3.8, 1.2, 0.6, "x\n(\u2026, 768)", "blue", fontsize=10)
    box(ax, wx, wy, side, side, "", "grey", ls="--", rounding=0.02)
    write(ax, wx + side / 2, wy + side / 2 + 0.25, "W", size=18, weight="bold", color=MUTED)
    write(ax, wx + side / 2, wy + side / 2 - 0.35, f"768 \u00d7 768\n{n_w:,} numbers",
          size=9.5, color=MUTED)
    write(ax, wx + side / 2, wy + side + 0.22, "pretrained weight: frozen", size=10.5,
          weight="bold", color=strong("grey"))
    # A (in_dim x rank) and B (rank x out_dim), with the data flow x -> A -> B
    ay = 0.45
    bx, by = wx + 0.75, ay + side - thin
    box(ax, wx, ay, thin, side, "", "green", rounding=0.02)
    write(ax, wx + thin / 2, ay - 0.2, "A", size=12, weight="bold", color=strong("green"))
    box(ax, bx, by, side, thin, "", "green", rounding=0.02)
    write(ax, bx + side + 0.1, by + thin / 2, "B", size=12, weight="bold",
          color=strong("green"), ha="left")
    arrow(ax, (wx + thin + 0.04, by + thin / 2), (bx - 0.04, by + thin / 2))
    write(ax, wx + thin + 0.27, by + thin + 0.14, f"x A\n(\u2026, {r})", size=9,
          color=strong("green"))
    tx = bx
    write(ax, tx, by - 0.3, f"B: {r} \u00d7 768 = {n_b:,} numbers, starts at 0",
          size=9.5, ha="left", color=strong("green"))
    write(ax, tx, ay + 1.3, f"A: 768 \u00d7 {r} = {n_a:,} numbers, random start", size=9.5,
          ha="left", color=strong("green"))
    write(ax, tx, ay + 0.75, "LoRA bypass: trained", size=10.5, ha="left", weight="bold",
          color=strong("green"))
    write(ax, tx, ay + 0.4, f"rank r = {r} (drawn wider than to scale)", size=9, ha="left",
          color=MUTED)
    # arrows
    arrow(ax, (1.45, 4.1), (wx - 0.05, 4.1))
    ax.plot([0.8, 0.8, 1.4], [3.8, 1.55, 1.55], color=INK, lw=1.5)
    arrow(ax, (1.4, 1.55), (wx - 0.05, 1.55))
    px, py = 6.7, 4.1
    ax.add_patch(plt.Circle((px, py), 0.24, facecolor="white", edgecolor=INK, lw=1.5))
    write(ax, px, py, "+", size=15, weight="bold")
    arrow(ax, (wx + side + 0.05, py), (px - 0.26, py))
    arrow(ax, (bx + side + 0.4, by + thin / 2), (px, py - 0.26), rad=0.35)
    write(ax, 6.3, 2.75, f"\u00d7 \u03b1 = {alpha}", size=10.5, ha="left")
    arrow(ax, (px + 0.26, py), (px + 0.8, py))
    write(ax, px + 0.9, py + 0.18, "x W + \u03b1 \u00b7 x A B", size=11.5, ha="left",
          weight="bold")
    write(ax, px + 0.9, py - 0.2, "(\u2026, 768)", size=9.5, ha="left", color=MUTED)
    write(ax, px + 0.9, 2.0, f"trained: {n_a + n_b:,}\n= {100 * (n_a + n_b) / n_w:.1f}% "
          "of W", size=10.5, ha="left", color=strong("green"))
    write(ax, 0.2, 5.65, f"LinearWithLoRA wrapping one 768 \u00d7 768 layer, rank {r}, "
          f"\u03b1 = {alpha} (the settings of Section 6.11).", size=9.5, ha="left",
          color=MUTED)
    return fig


FIGURES = [
    Figure("ch06_last_token", "ch06_classification.ipynb", "9b9c5b8c",
           "Under the causal mask only the last token sees the whole message, so the "
           "classifier reads its output row alone.",
           "A 4 by 4 causal mask for Do you have time, the last row highlighted; the model's "
           "four output rows of two class scores, of which only the last is used.",
           draw_ch06_last_token,
           "The last row's scores are those the stored run prints in the cell below."),
    Figure("ch06_trainable", "ch06_classification.ipynb", "3f44ad79",
           "Only the last transformer block, the final norm and the new 2-class head are "
           "trained; everything else stays frozen.",
           "The GPT-2 small stack with embeddings and blocks 1 to 11 frozen, block 12, the "
           "final LayerNorm and the new output head trainable, with parameter counts.",
           draw_ch06_trainable,
           "Parameter counts of GPT-2 small after add_classification_head."),
    Figure("ch06_lora", "ch06_classification.ipynb", "a959e370",
           "LoRA keeps W frozen and learns a thin bypass A\u00b7B beside it; with B = 0 at the "
           "start the layer begins exactly as the pretrained one.",
           "Input x goes through the frozen 768 by 768 weight W and, in parallel, through the "
           "thin matrices A (768 by 16) and B (16 by 768) scaled by alpha; the two results "
           "are added.", draw_ch06_lora,
           "Sizes from LinearWithLoRA on a 768 \u00d7 768 layer with rank 16."),
]
