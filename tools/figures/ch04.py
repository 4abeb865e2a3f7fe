"""The figures of Chapter 4: the GPT model."""

import re

import matplotlib.pyplot as plt
import numpy as np

from tools.figures.style import (
    Figure, INK, MONO, MUTED, arrow, box, canvas, digraph, fill, gpt_on_meta, light, param_count,
    stored_output, strong, tokenizer, write)


def draw_ch04_gpt_stack():
    from previous_chapters import GPT_CONFIG_124M
    cfg = GPT_CONFIG_124M
    model = gpt_on_meta(cfg)
    V, T, D, L = cfg["vocab_size"], cfg["context_length"], cfg["emb_dim"], cfg["n_layers"]
    block = param_count(model.trf_blocks[0])
    fig, ax = canvas(9.0, 8.0)
    cx, w = 3.9, 3.2
    x = cx - w / 2

    def layer(y, h, label, color, shape, params=None, **kw):
        box(ax, x, y, w, h, label, color, fontsize=10.5, **kw)
        write(ax, x + w + 0.25, y + h / 2, shape, size=9.5, ha="left", family=MONO,
              color=MUTED)
        if params is not None:
            write(ax, x - 0.25, y + h / 2, f"{params:,}", size=9.5, ha="right",
                  family=MONO, color=strong(color))

    write(ax, x - 0.25, 7.7, "parameters", size=9.5, ha="right", weight="bold")
    write(ax, x + w + 0.25, 7.7, "output shape", size=9.5, ha="left", weight="bold")
    layer(7.0, 0.45, "token IDs", "grey", "(batch, num_tokens)", fill="white")
    arrow(ax, (cx, 7.0), (cx, 6.75))
    # each embedding table's size sits inside its own box, so neither count reads as the other's
    half = w / 2 - 0.05
    for bx, name, table, color in [(x, "token embedding", model.tok_emb, "blue"),
                                   (cx + 0.05, "position embedding", model.pos_emb, "purple")]:
        rows, cols = table.weight.shape
        box(ax, bx, 5.95, half, 0.8, "", color)
        write(ax, bx + half / 2, 6.52, name, size=9.5)
        write(ax, bx + half / 2, 6.18, f"{rows:,} \u00d7 {cols}\n= {param_count(table):,}",
              size=9, family=MONO, color=strong(color))
    write(ax, x - 0.25, 6.35, "in each box", size=9.5, ha="right", color=MUTED)
    write(ax, x + w + 0.25, 6.35, f"(batch, num_tokens, {D})", size=9.5, ha="left",
          family=MONO, color=MUTED)
    arrow(ax, (cx, 5.95), (cx, 5.8))
    layer(5.35, 0.45, "add, then dropout", "grey", f"(batch, num_tokens, {D})", fill="white")
    arrow(ax, (cx, 5.35), (cx, 5.05))
    # the stack of blocks, drawn as a few offset cards
    for k in range(3, 0, -1):
        box(ax, x + 0.1 * k, 3.0 + 0.1 * k, w, 2.0, "", "orange", fill="white", lw=1.0)
    box(ax, x, 3.0, w, 2.0, "", "orange")
    write(ax, cx, 4.55, "transformer block", size=11, weight="bold")
    write(ax, cx, 4.1, "LayerNorm \u2192 multi-head attention (+)", size=9)
    write(ax, cx, 3.75, "LayerNorm \u2192 feed-forward (+)", size=9)
    write(ax, cx, 3.3, f"\u00d7 {L} (n_layers)", size=11, weight="bold", color=strong("orange"))
    write(ax, x - 0.25, 4.0, f"{L} \u00d7 {block:,}\n= {L * block:,}", size=9.5, ha="right",
          family=MONO, color=strong("orange"))
    write(ax, x + w + 0.55, 4.0, f"(batch, num_tokens, {D})", size=9.5, ha="left",
          family=MONO, color=MUTED)
    arrow(ax, (cx, 3.0), (cx, 2.7))
    layer(2.2, 0.45, "final LayerNorm", "teal", f"(batch, num_tokens, {D})",
          param_count(model.final_norm))
    arrow(ax, (cx, 2.2), (cx, 1.9))
    layer(1.35, 0.5, f"output head: Linear({D} \u2192 {V:,})", "green",
          f"(batch, num_tokens, {V})", param_count(model.out_head))
    arrow(ax, (cx, 1.35), (cx, 1.05))
    layer(0.55, 0.45, "logits: a score for every next token", "grey",
          "", fill="white")
    total = param_count(model)
    write(ax, 0.2, 0.2, f"GPT_CONFIG_124M, counted on PyTorch's meta device: {total:,} "
          f"parameters in all (context_length {T}).", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch04_transformer_block():
    from previous_chapters import GPT_CONFIG_124M
    D = GPT_CONFIG_124M["emb_dim"]
    fig, ax = canvas(9.0, 8.4)
    cx, w = 4.4, 3.4
    x = cx - w / 2

    def step(y, label, color, h=0.5, **kw):
        box(ax, x, y, w, h, label, color, fontsize=10.5, **kw)
        return y

    write(ax, cx, 8.1, f"input x  (batch, num_tokens, {D})", size=10.5, weight="bold")
    arrow(ax, (cx, 7.9), (cx, 7.5))
    step(7.0, "LayerNorm (norm1)", "teal")
    arrow(ax, (cx, 7.0), (cx, 6.7))
    step(6.0, "multi-head causal attention (att)", "orange", h=0.7)
    arrow(ax, (cx, 6.0), (cx, 5.7))
    step(5.2, "dropout (drop_shortcut)", "grey")
    arrow(ax, (cx, 5.2), (cx, 4.9))
    # first add
    ax.add_patch(plt.Circle((cx, 4.65), 0.22, facecolor="white", edgecolor=INK, lw=1.5))
    write(ax, cx, 4.65, "+", size=15, weight="bold")
    arrow(ax, (cx, 4.43), (cx, 4.1))
    step(3.6, "LayerNorm (norm2)", "teal")
    arrow(ax, (cx, 3.6), (cx, 3.3))
    box(ax, x, 2.15, w, 1.15, "", "blue")
    write(ax, cx, 3.05, "feed-forward (ff)", size=10.5)
    write(ax, cx, 2.7, f"Linear {D} \u2192 {4 * D}, GELU,", size=9.5)
    write(ax, cx, 2.4, f"Linear {4 * D} \u2192 {D}", size=9.5)
    arrow(ax, (cx, 2.15), (cx, 1.85))
    step(1.35, "dropout (drop_shortcut)", "grey")
    arrow(ax, (cx, 1.35), (cx, 1.05))
    ax.add_patch(plt.Circle((cx, 0.8), 0.22, facecolor="white", edgecolor=INK, lw=1.5))
    write(ax, cx, 0.8, "+", size=15, weight="bold")
    arrow(ax, (cx + 0.22, 0.8), (cx + 2.3, 0.8))
    write(ax, cx + 2.4, 0.8, f"output, same shape\n(batch, num_tokens, {D})", size=10,
          ha="left", weight="bold")
    # shortcut paths
    g = strong("green")
    sx = x - 0.7
    ax.plot([cx, sx, sx], [7.7, 7.7, 4.65], color=g, lw=2.2)
    arrow(ax, (sx, 4.65), (cx - 0.22, 4.65), color=g, lw=2.2)
    ax.plot([cx, sx, sx], [4.25, 4.25, 0.8], color=g, lw=2.2)
    arrow(ax, (sx, 0.8), (cx - 0.22, 0.8), color=g, lw=2.2)
    write(ax, sx - 0.15, 6.2, "shortcut 1:\nx + att(norm1(x))", size=9.5, ha="right", color=g)
    write(ax, sx - 0.15, 2.6, "shortcut 2:\nx + ff(norm2(x))", size=9.5, ha="right", color=g)
    write(ax, x + w + 0.3, 6.35, f"{GPT_CONFIG_124M['n_heads']} heads", size=9.5, ha="left",
          color=MUTED)
    write(ax, x + w + 0.3, 2.7, "applied to every token\nseparately", size=9.5, ha="left",
          color=MUTED)
    write(ax, 0.2, 0.2, "Pre-LayerNorm block of GPT-2 (TransformerBlock, GPT_CONFIG_124M sizes).",
          size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch04_param_memory():
    from previous_chapters import GPT_CONFIG_124M, MODEL_CONFIGS
    names, untied, tied = [], [], []
    for name, sizes in MODEL_CONFIGS.items():
        model = gpt_on_meta({**GPT_CONFIG_124M, **sizes})
        total = param_count(model)
        names.append(name.replace(" (", "\n("))
        untied.append(total)
        tied.append(total - param_count(model.out_head))
    untied, tied = np.array(untied), np.array(tied)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.8, 4.2))
    xs = np.arange(len(names))
    a1.bar(xs - 0.2, untied / 1e6, 0.4, color=light("blue"), edgecolor=strong("blue"),
           label="as we build it (separate output head)")
    a1.bar(xs + 0.2, tied / 1e6, 0.4, color=light("green"), edgecolor=strong("green"),
           label="with weight tying (the name's size)")
    for k in range(len(names)):
        a1.text(xs[k] + 0.2, tied[k] / 1e6 + 25, f"{tied[k] / 1e6:.0f}M", ha="center",
                fontsize=9, color=strong("green"))
        a1.text(xs[k] - 0.2, untied[k] / 1e6 + 25, f"{untied[k] / 1e6:.0f}M", ha="center",
                fontsize=9, color=strong("blue"))
    a1.set_xticks(xs, names, fontsize=9)
    a1.set_ylabel("parameters (millions)")
    a1.set_title("Parameters", fontsize=11.5, weight="bold")
    a1.set_ylim(0, untied.max() / 1e6 * 1.25)
    a1.legend(fontsize=8.5, frameon=False, loc="upper left")
    gb = untied * 4 / 1024**3
    a2.bar(xs, gb, 0.55, color=light("orange"), edgecolor=strong("orange"))
    for k in range(len(names)):
        a2.text(xs[k], gb[k] + 0.12, f"{gb[k]:.2f} GB", ha="center", fontsize=9,
                color=strong("orange"))
    a2.set_xticks(xs, names, fontsize=9)
    a2.set_ylabel("GB (float32, 4 bytes each)")
    a2.set_title("Memory for the weights alone", fontsize=11.5, weight="bold")
    a2.set_ylim(0, gb.max() * 1.2)
    fig.text(0.01, 0.02, "Counted with GPTModel on PyTorch's meta device for the four "
             "MODEL_CONFIGS. Training needs several times more memory\n(gradients, optimizer "
             "state, activations).", fontsize=9, color=MUTED)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return fig


def _floats(text):
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


def draw_ch04_layer_norm():
    """Section 4.2's first example row, as its stored run printed it, and where LayerNorm sits."""
    before = _floats(stored_output("ch04_gpt_model.ipynb", "bef17f5f"))
    after = _floats(stored_output("ch04_gpt_model.ipynb", "d1c16587"))
    row, mean, var = before[:6], before[12], before[14]
    fig, ax = canvas(9.8, 4.6)
    # where it sits: a copy of x is normalised before each sub-layer; the shortcut keeps x
    write(ax, 0.3, 4.2, "x", size=12, weight="bold")
    arrow(ax, (0.45, 4.2), (1.25, 4.2))
    box(ax, 1.3, 3.95, 1.6, 0.5, "LayerNorm", "teal", weight="bold")
    arrow(ax, (2.9, 4.2), (3.4, 4.2))
    box(ax, 3.45, 3.95, 2.3, 0.5, "attention or feed-forward", "orange", fontsize=10)
    arrow(ax, (5.75, 4.2), (6.3, 4.2))
    ax.add_patch(plt.Circle((6.5, 4.2), 0.2, facecolor="white", edgecolor=INK, lw=1.4))
    write(ax, 6.5, 4.2, "+", size=14, weight="bold")
    ax.plot([0.7, 0.7, 6.5], [4.2, 3.7, 3.7], color=strong("green"), lw=2)
    arrow(ax, (6.5, 3.7), (6.5, 4.0), color=strong("green"), lw=2)
    write(ax, 3.6, 3.55, "shortcut: x itself, never normalised", size=9.5, color=strong("green"))
    write(ax, 6.85, 4.2, "pre-LN, as in GPT-2:\nbefore each sub-layer", size=9.5, ha="left",
          color=MUTED)
    # what it does to one vector
    panels = [(f"layer output (row 1)\nmean {mean:.4f}, var {var:.4f}", row, "grey"),
              ("minus the mean\nmean 0", [v - mean for v in row], "teal"),
              ("divided by \u221avar\nmean 0, var 1", after[:6], "teal")]
    for k, (title, values, color) in enumerate(panels):
        a = fig.add_axes([0.05 + k * 0.25, 0.17, 0.19, 0.45])
        a.bar(range(6), values, 0.7, color=light(color), edgecolor=strong(color))
        a.axhline(0, color=INK, lw=0.8)
        a.set_ylim(-1.75, 2.2)
        a.set_xticks(range(6), [str(j + 1) for j in range(6)], fontsize=9)
        a.set_xlabel("feature", fontsize=9)
        a.tick_params(axis="y", labelsize=9)
        a.set_title(title, fontsize=10)
        for j, v in enumerate(values):
            a.text(j, v + (0.06 if v >= 0 else -0.06), f"{v:.2f}", ha="center", fontsize=9,
                   va="bottom" if v >= 0 else "top", rotation=90)
        if k:
            arrow(ax, (0.05 * 9.8 + k * 0.25 * 9.8 - 0.55, 1.7), (k * 0.25 * 9.8 + 0.4, 1.7))
    box(ax, 7.55, 1.0, 2.1, 1.5, "then  scale \u00b7 x + shift\n\ntrainable, one per\n"
        "feature: start at\n1 and 0, so the model\ncan undo the norm", "purple", fontsize=9.5)
    arrow(ax, (7.3, 1.7), (7.55, 1.7))
    write(ax, 0.2, 0.15, "Numbers: the first example of Section 4.2 (6 features), as printed "
          "above; LayerNorm also adds eps = 1e-5 to the variance.", size=9, ha="left",
          color=MUTED)
    return fig


def draw_ch04_gelu_relu():
    import torch

    from previous_chapters import GELU
    x = torch.linspace(-3, 3, 601, requires_grad=True)
    curves = {"GELU": GELU()(x), "ReLU": torch.relu(x)}
    slopes = {n: torch.autograd.grad(y.sum(), x, retain_graph=True)[0] for n, y in curves.items()}
    xs = x.detach().numpy()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.8, 3.8))
    for (name, y), color, ls in zip(curves.items(), ["orange", "grey"], ["-", "--"]):
        a1.plot(xs, y.detach().numpy(), color=strong(color), ls=ls, lw=2, label=name)
        a2.plot(xs, slopes[name].numpy(), color=strong(color), ls=ls, lw=2, label=name)
    g = curves["GELU"].detach().numpy()
    k = int(np.argmin(g))
    a1.plot(xs[k], g[k], "o", color=strong("orange"))
    a1.annotate(f"minimum {g[k]:.2f}\nat x = {xs[k]:.2f}", (xs[k], g[k]), (-2.9, 1.2),
                fontsize=9, arrowprops=dict(arrowstyle="-", color=MUTED))
    a1.set_title("activation", fontsize=11, weight="bold")
    a2.set_title("slope (what the gradient is multiplied by)", fontsize=11, weight="bold")
    a2.annotate("ReLU: slope 0 for every\nnegative input: no gradient", (-1.5, 0), (-2.9, 0.45),
                fontsize=9, arrowprops=dict(arrowstyle="-", color=MUTED))
    for a in (a1, a2):
        a.axhline(0, color=MUTED, lw=0.6)
        a.axvline(0, color=MUTED, lw=0.6)
        a.set_xlabel("x")
        a.legend(fontsize=9, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def draw_ch04_feed_forward():
    from previous_chapters import GPT_CONFIG_124M, FeedForward
    import torch
    D = GPT_CONFIG_124M["emb_dim"]
    with torch.device("meta"):
        ff = FeedForward(GPT_CONFIG_124M)
    first, last = ff.layers[0], ff.layers[2]
    fig, ax = canvas(9.8, 4.8)
    tall, base = 3.2, 0.75
    unit = tall / (4 * D)  # inches per feature
    cols = [(0.7, D, "blue", "token vector"), (3.7, 4 * D, "orange", "expanded"),
            (6.0, 4 * D, "orange", "after GELU"), (9.0, D, "green", "output")]
    for xc, n, color, name in cols:
        h = n * unit
        y = base + (tall - h) / 2
        box(ax, xc - 0.18, y, 0.36, h, "", color, rounding=0.04)
        write(ax, xc, y + h + 0.18, f"{n:,}", size=10.5, weight="bold", color=strong(color))
        write(ax, xc, 0.45, name, size=9.5, color=MUTED)
    steps = [(0.95, 3.45, f"Linear({D} \u2192 {4 * D})\n{param_count(first):,} parameters"),
             (3.95, 5.75, "GELU\nfeature by feature"),
             (6.25, 8.75, f"Linear({4 * D} \u2192 {D})\n{param_count(last):,} parameters")]
    for x0, x1, label in steps:
        arrow(ax, (x0, base + tall / 2), (x1, base + tall / 2), lw=1.6)
        write(ax, (x0 + x1) / 2, base + tall / 2 + 0.5, label, size=9.5)
    write(ax, 0.2, 4.55, f"FeedForward on each token separately: (2, 3, {D}) \u2192 (2, 3, "
          f"{4 * D}) \u2192 (2, 3, {D}), the shape printed above", size=10, ha="left",
          weight="bold")
    write(ax, 0.2, 0.12, f"{param_count(ff):,} parameters in all, two thirds of a transformer "
          "block's; counted on PyTorch's meta device.", size=9, ha="left", color=MUTED)
    return fig


def draw_ch04_shortcut_gradients():
    """Section 4.4's gradients, as the stored run printed them, on a log scale."""
    def gradients(cell):  # the five "mean |grad| = ..." values and the printed ratio
        printed = stored_output("ch04_gpt_model.ipynb", cell)
        return ([float(v) for v in re.findall(r"= (\d+\.\d+)", printed)],
                float(re.search(r"first layer: (\d+\.\d+)", printed).group(1)))

    (without, ratio_without), (with_, ratio_with) = gradients("ada4e767"), gradients("71bbd7b1")
    fig, ax = canvas(9.8, 4.5)
    write(ax, 0.35, 3.45, "x", size=12, weight="bold")
    arrow(ax, (0.35, 3.25), (0.35, 2.75))
    box(ax, 0.05, 2.2, 0.6, 0.5, "layer", "orange", fontsize=10)
    arrow(ax, (0.35, 2.2), (0.35, 1.75))
    ax.add_patch(plt.Circle((0.35, 1.55), 0.18, facecolor="white", edgecolor=INK, lw=1.4))
    write(ax, 0.35, 1.55, "+", size=13, weight="bold")
    ax.plot([0.35, 1.0, 1.0], [3.15, 3.15, 1.55], color=strong("green"), lw=2)
    arrow(ax, (1.0, 1.55), (0.55, 1.55), color=strong("green"), lw=2)
    write(ax, 0.2, 1.05, "x + layer(x)", size=10, ha="left", family=MONO)
    write(ax, 0.1, 0.55, "backward, the + passes\nthe gradient on unchanged", size=9,
          ha="left", color=strong("green"))
    a = fig.add_axes([0.3, 0.16, 0.62, 0.74])
    xs = np.arange(5)
    for vals, off, color, label in [(without, -0.2, "red", "without shortcuts"),
                                    (with_, 0.2, "green", "with shortcuts")]:
        a.bar(xs + off, vals, 0.38, color=light(color), edgecolor=strong(color), label=label)
        for k, v in enumerate(vals):
            a.text(k + off, v * 1.15, f"{v:.6f}".rstrip("0"), ha="center", fontsize=9)
    a.set_yscale("log")
    a.set_ylim(5e-5, 2)
    a.set_xticks(xs, [f"layers.{k}" for k in xs], fontsize=9)
    a.set_ylabel("mean |gradient| of the weight (log scale)", fontsize=9.5)
    a.legend(fontsize=9, frameon=False, loc="upper left")
    # on the canvas, so that the drawn extent (which only sees the canvas) spans the plot
    write(ax, 6.1, 4.25, f"last layer's gradient / first layer's: {ratio_without:.1f} without "
          f"shortcuts, {ratio_with:.1f} with them", size=10.5, weight="bold")
    write(ax, 0.1, 0.1, "The five-layer network of Section 4.4 (same seed both times); mean "
          "|gradient| of each layer's weight as printed above.", size=9, ha="left", color=MUTED)
    return fig


def draw_ch04_gpt2_sizes():
    from previous_chapters import GPT_CONFIG_124M, MODEL_CONFIGS
    fig, ax = canvas(9.8, 5.6)
    colors = ["blue", "teal", "purple", "orange"]
    for k, ((name, sizes), color) in enumerate(zip(MODEL_CONFIGS.items(), colors)):
        model = gpt_on_meta({**GPT_CONFIG_124M, **sizes})
        tied = param_count(model) - param_count(model.out_head)
        D, L, H = sizes["emb_dim"], sizes["n_layers"], sizes["n_heads"]
        cx, w, step = 1.25 + k * 2.45, D / 1600 * 2.1, 0.075
        for layer in range(L):  # one thin bar per transformer block, width = emb_dim
            ax.add_patch(plt.Rectangle((cx - w / 2, 1.3 + layer * step), w, step * 0.7,
                                       facecolor=light(color), edgecolor=strong(color), lw=0.6))
        top = 1.3 + L * step
        write(ax, cx, top + 0.25, f"{L} blocks", size=10, weight="bold", color=strong(color))
        write(ax, cx, 1.05, f"emb_dim {D:,}", size=10, family=MONO)
        write(ax, cx, 0.75, f"{H} heads \u00d7 {D // H} = {D:,}", size=9.5, family=MONO,
              color=MUTED)
        write(ax, cx, 0.4, f"{tied:,} params", size=9.5, family=MONO, color=strong(color))
        write(ax, cx, 5.35, name, size=10.5, weight="bold")
    write(ax, 0.15, 0.1, "Bar width \u221d emb_dim, one bar per block; parameters with weight "
          "tying, counted with GPTModel on the meta device.", size=9, ha="left", color=MUTED)
    return fig


def draw_ch04_generation_loop():
    """Section 4.7's loop, with the IDs its stored run printed."""
    printed = stored_output("ch04_gpt_model.ipynb", "f3a56a84")
    out = [int(i) for i in re.search(r"Output IDs: \[(.*?)\]", printed).group(1).split(",")]
    context, new = out[:4], out[4]
    piece = tokenizer().decode([new])
    from previous_chapters import GPT_CONFIG_124M
    vocab = GPT_CONFIG_124M["vocab_size"]
    return digraph(f"""
  context [label="context: token IDs\\n{' '.join(map(str, context))}", {fill("blue")}];
  model [label="GPTModel", {fill("teal")}];
  logits [label="logits\\n(1, {len(context)}, {vocab})", {fill("orange")}];
  last [label="last position's logits\\n(1, {vocab})", {fill("orange")}];
  pick [label="argmax\\n{new}  '{piece}'", {fill("green")}];
  context -> model -> logits -> last -> pick;
  pick -> context [label="  append it and repeat\\n  (6 times: 10 IDs)", style=dashed,
                   constraint=false];
""", rankdir="LR")


FIGURES = [
    Figure("ch04_generation_loop", "ch04_gpt_model.ipynb", "f3a56a84",
           "Generating text is a loop: the model scores every position, only the last "
           "position's logits choose the next token, and the chosen ID is appended to the "
           "context for the next round.",
           "A loop from the context token IDs through GPTModel to logits of shape (1, 4, "
           "50257), the last position's logits, argmax picking one ID, and a dashed arrow "
           "back that appends it to the context.", draw_ch04_generation_loop,
           "IDs from the stored run of the cell above (random, untrained weights)."),
    Figure("ch04_gpt_stack", "ch04_gpt_model.ipynb", "a78208c6",
           "GPT-2 is embeddings, a stack of identical transformer blocks, a final layer norm "
           "and a linear head; the shape stays (batch, tokens, 768) until the head.",
           "The GPT model from token IDs through token and position embeddings, 12 "
           "transformer blocks, the final LayerNorm and the output head, with parameter "
           "counts and shapes.", draw_ch04_gpt_stack,
           "Parameter counts of GPTModel(GPT_CONFIG_124M)."),
    Figure("ch04_transformer_block", "ch04_gpt_model.ipynb", "e83d8d7f",
           "Each half of the block (attention, feed-forward) works on a normalised copy of x "
           "and adds its result back to x through a shortcut.",
           "A transformer block: LayerNorm, multi-head attention, dropout, add the shortcut; "
           "LayerNorm, feed-forward, dropout, add the second shortcut.",
           draw_ch04_transformer_block),
    Figure("ch04_param_memory", "ch04_gpt_model.ipynb", "5d358d1a",
           "Parameters and float32 memory grow quickly with the model size; weight tying "
           "saves one vocabulary-sized matrix in every size.",
           "Bar charts of the parameter counts (with and without weight tying) and the "
           "float32 weight memory of GPT-2 small, medium, large and XL.",
           draw_ch04_param_memory,
           "Counted with GPTModel for the four MODEL_CONFIGS."),
    Figure("ch04_layer_norm", "ch04_gpt_model.ipynb", "452bcf35",
           "LayerNorm sits before each sub-layer, off the shortcut; it moves each token's "
           "vector to mean 0 and variance 1, then a learned scale and shift follow.",
           "Top: x goes through LayerNorm into attention or feed-forward and is added back "
           "through an untouched shortcut. Bottom: bar charts of six activations before, "
           "after subtracting the mean and after dividing by the standard deviation.",
           draw_ch04_layer_norm, "Values from the stored run of the two cells above."),
    Figure("ch04_gelu_relu", "ch04_gpt_model.ipynb", "e71db436",
           "Look at the slopes: ReLU's is exactly 0 for every negative input, GELU's changes "
           "smoothly and stays non-zero a little below 0.",
           "Two plots over x from -3 to 3: GELU and ReLU, and their slopes; ReLU's slope "
           "jumps from 0 to 1 at x = 0, GELU's rises smoothly.", draw_ch04_gelu_relu,
           "Computed with the course's GELU (tanh approximation) and autograd."),
    Figure("ch04_feed_forward", "ch04_gpt_model.ipynb", "e2a14c92",
           "The feed-forward network widens every token's vector four times, applies GELU, "
           "and projects it back, so its output fits the next block.",
           "Bars of height 768, 3,072, 3,072 and 768 joined by Linear, GELU and Linear, "
           "with the parameter count of each linear layer.", draw_ch04_feed_forward,
           "Sizes and counts of FeedForward(GPT_CONFIG_124M)."),
    Figure("ch04_shortcut_gradients", "ch04_gpt_model.ipynb", "b54214e1",
           "With shortcuts every layer's gradient is hundreds of times larger, and the first "
           "layer's is no longer lost on the way back.",
           "A layer with a shortcut that adds x to its output, and a log-scale bar chart of "
           "the mean absolute weight gradients of five layers without and with shortcuts.",
           draw_ch04_shortcut_gradients, "Gradients from the stored run of the two cells above."),
    Figure("ch04_gpt2_sizes", "ch04_gpt_model.ipynb", "a075b46b",
           "The four GPT-2 sizes differ only in depth (blocks), width (emb_dim) and heads; "
           "every head is 64 wide in all of them.",
           "Four stacks of thin bars, one bar per transformer block, wider for larger "
           "emb_dim: 12, 24, 36 and 48 blocks, with heads and parameter counts.",
           draw_ch04_gpt2_sizes, "MODEL_CONFIGS; parameters counted with GPTModel."),
]
