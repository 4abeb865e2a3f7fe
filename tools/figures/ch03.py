"""The figures of Chapter 3: attention."""

import re

import numpy as np
from matplotlib.patches import Rectangle

from tools.figures.style import (
    CH03_INPUTS, CH03_SEED, CH03_TOKENS, Figure, INK, MONO, MUTED, arrow, box, canvas, digraph,
    fill, light, matrix, shape_block, stored_output, strong, write)


def draw_ch03_one_query():
    x = np.array(CH03_INPUTS)
    q = x[1]
    scores = x @ q
    weights = np.exp(scores) / np.exp(scores).sum()
    context = weights @ x
    fig, ax = canvas(9.8, 4.6)
    row = 0.5
    top = 3.7
    write(ax, 1.2, top + 0.5, "inputs x\u2071", size=11.5, weight="bold")
    write(ax, 4.05, top + 0.5, "\u2460 score = x\u2071 \u00b7 query", size=11.5, weight="bold")
    write(ax, 6.1, top + 0.5, "\u2461 softmax", size=11.5, weight="bold")
    write(ax, 8.5, top + 0.5, "\u2462 weighted sum", size=11.5, weight="bold")
    for i, (tokname, vec) in enumerate(zip(CH03_TOKENS, x)):
        y = top - (i + 1) * row
        is_q = i == 1
        box(ax, 0.15, y + 0.05, 0.95, row - 0.1, tokname, "orange" if is_q else "blue",
            fontsize=10, weight="bold" if is_q else "normal")
        write(ax, 1.2, y + row / 2, "[" + ", ".join(f"{v:.2f}" for v in vec) + "]", size=9.5,
              ha="left", family=MONO)
        arrow(ax, (2.85, y + row / 2), (3.35, y + row / 2), lw=1.0, scale=10)
        write(ax, 3.75, y + row / 2, f"{scores[i]:.2f}", size=10, family=MONO)
        arrow(ax, (4.2, y + row / 2), (4.7, y + row / 2), lw=1.0, scale=10)
        bar = weights[i] * 5.5
        ax.add_patch(Rectangle((4.85, y + 0.1), bar, row - 0.2, facecolor=light("orange"),
                               edgecolor=strong("orange")))
        write(ax, 4.85 + bar + 0.08, y + row / 2, f"{weights[i]:.2f}", size=9.5, ha="left",
              family=MONO)
    write(ax, 3.75, top - 6 * row - 0.25, f"query = x\u00b2 ({CH03_TOKENS[1]})", size=9.5,
          color=strong("orange"))
    write(ax, 5.5, top - 6 * row - 0.25, f"sum = {weights.sum():.2f}", size=9.5, color=MUTED)
    # weighted sum -> context vector
    cy = top - 3 * row
    arrow(ax, (7.05, cy), (7.6, cy))
    box(ax, 7.65, cy - 0.85, 2.0, 1.7, "", "green")
    write(ax, 8.65, cy + 0.5, "context vector z\u00b2", size=10.5, weight="bold")
    write(ax, 8.65, cy + 0.05, "\u03a3\u1d62 weight\u1d62 \u00b7 x\u2071", size=10.5)
    write(ax, 8.65, cy - 0.45, "[" + ", ".join(f"{v:.2f}" for v in context) + "]", size=9.5,
          family=MONO)
    write(ax, 0.15, 0.2, "Numbers from the book's six 3-d input vectors of Section 3.1 "
          "(no trainable weights yet).", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch03_qkv():
    fig, ax = canvas(9.8, 6.5)
    u = 0.22
    n, d_in, d_out = 6, 3, 2
    write(ax, 2.0, 6.25, "\u2460 three projections of the same inputs", size=11.5,
          weight="bold")
    xy = (0.3, 4.3)
    shape_block(ax, xy[0], xy[1], n, d_in, u, "blue", "X", "(6, 3)")
    write(ax, xy[0] + 0.25, xy[1] - n * u - 0.6, "inputs\n(tokens, d_in)",
          size=8.5, color=MUTED)
    names = [("W_query", "Q", "orange"), ("W_key", "K", "purple"), ("W_value", "V", "green")]
    for k, (wname, oname, color) in enumerate(names):
        y = 5.75 - k * 1.9
        write(ax, 1.55, y - n * u / 2, "@", size=15)
        shape_block(ax, 1.85, y - 0.33, d_in, d_out, u, color, wname, "(3, 2)")
        write(ax, 2.6, y - n * u / 2, "=", size=15)
        shape_block(ax, 2.9, y, n, d_out, u, color, oname, "(6, 2)")
        arrow(ax, (1.0, xy[1] - n * u / 2), (1.38, y - n * u / 2), lw=1.0, scale=10,
              color=MUTED)
    x0 = 4.4
    write(ax, x0 + 2.5, 6.25, "\u2461 attention, all queries at once", size=11.5,
          weight="bold")
    y1 = 5.6
    shape_block(ax, x0, y1, n, d_out, u, "orange", "Q", "(6, 2)")
    write(ax, x0 + 0.75, y1 - n * u / 2, "@", size=15)
    shape_block(ax, x0 + 1.05, y1 - 0.44, d_out, n, u, "purple", "K\u1d40", "(2, 6)")
    write(ax, x0 + 2.65, y1 - n * u / 2, "=", size=15)
    shape_block(ax, x0 + 2.95, y1, n, n, u, "orange", "scores", "(6, 6)")
    arrow(ax, (x0 + 3.6, y1 - n * u - 0.45), (x0 + 1.2, 3.0), rad=-0.25)
    write(ax, x0 + 3.75, 3.55, "\u00f7 \u221ad_k, then softmax\nalong each row", size=9.5,
          ha="left")
    y2 = 2.7
    shape_block(ax, x0, y2, n, n, u, "orange", "weights", "(6, 6)")
    write(ax, x0 + 1.6, y2 - n * u / 2, "@", size=15)
    shape_block(ax, x0 + 1.9, y2, n, d_out, u, "green", "V", "(6, 2)")
    write(ax, x0 + 2.65, y2 - n * u / 2, "=", size=15)
    shape_block(ax, x0 + 2.95, y2, n, d_out, u, "teal", "Z", "(6, 2)")
    write(ax, x0 + 3.55, y2 - n * u / 2, "one context vector\nper token", size=9.5,
          ha="left", color=MUTED)
    write(ax, 0.3, 0.2, "Shapes of Section 3.3: 6 tokens, d_in = 3, d_out = 2 (one cell per "
          "number). An nn.Linear stores W transposed, as (d_out, d_in).", size=9.5,
          ha="left", color=MUTED)
    return fig


def ch03_causal_weights():
    import torch

    from previous_chapters import CausalAttention
    x = torch.tensor(CH03_INPUTS)
    torch.manual_seed(CH03_SEED)  # the same three nn.Linear draws as SelfAttention_v2's
    ca = CausalAttention(3, 2, context_length=6, dropout=0.0)
    with torch.no_grad():
        queries, keys = ca.W_query(x), ca.W_key(x)
        scores = (queries @ keys.T) / keys.shape[-1] ** 0.5
    return scores.numpy()


def draw_ch03_causal_mask():
    scores = ch03_causal_weights()
    n = scores.shape[0]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    full = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    zeroed = np.where(upper, 0.0, full)
    renorm = zeroed / zeroed.sum(-1, keepdims=True)
    masked_scores = np.where(upper, -np.inf, scores)
    via_inf = np.exp(masked_scores) / np.exp(masked_scores).sum(-1, keepdims=True)
    assert np.allclose(via_inf, renorm)
    fig, ax = canvas(9.8, 4.5)
    cell = 0.37
    top = 3.35
    x1 = 0.85
    matrix(ax, x1, top, full, cell=cell, color="orange", vmin=0, vmax=1, fontsize=7.5,
           row_labels=CH03_TOKENS, col_labels=CH03_TOKENS,
           title="\u2460 softmax over all tokens")
    x2 = x1 + n * cell + 0.85
    arrow(ax, (x2 - 0.7, top - n * cell / 2), (x2 - 0.12, top - n * cell / 2))
    matrix(ax, x2, top, zeroed, cell=cell, color="orange", vmin=0, vmax=1, fontsize=7.5,
           masked=upper, col_labels=CH03_TOKENS, title="\u2461 zero the future")
    x3 = x2 + n * cell + 0.85
    arrow(ax, (x3 - 0.7, top - n * cell / 2), (x3 - 0.12, top - n * cell / 2))
    matrix(ax, x3, top, renorm, cell=cell, color="orange", vmin=0, vmax=1, fontsize=7.5,
           masked=upper, col_labels=CH03_TOKENS, title="\u2462 renormalise rows")
    for i in range(n):
        write(ax, x2 + n * cell + 0.08, top - (i + 0.5) * cell, f"{zeroed[i].sum():.2f}",
              size=7.5, ha="left", color=strong("red"))
        write(ax, x3 + n * cell + 0.08, top - (i + 0.5) * cell, f"{renorm[i].sum():.2f}",
              size=7.5, ha="left", color=strong("green"))
    write(ax, x2 + n * cell + 0.2, top + 0.1, "row\nsum", size=7.5, color=MUTED)
    write(ax, x3 + n * cell + 0.2, top + 0.1, "row\nsum", size=7.5, color=MUTED)
    write(ax, 0.2, 0.5, "Rows are queries, columns keys. Setting the future scores to \u2212\u221e "
          "before one softmax gives exactly matrix \u2462.", size=10, ha="left")
    write(ax, 0.2, 0.2, "The weights of Section 3.4: d_in = 3, d_out = 2, random initial weights "
          f"(seed {CH03_SEED}), on the inputs of Section 3.1.", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch03_heads():
    fig, ax = canvas(10.4, 5.0)
    u = 0.26
    T, heads, hd = 4, 2, 3
    top = 3.75
    colors = ["orange", "purple"]

    def split_block(x, y, label, below):
        for h in range(heads):
            shape_block(ax, x + h * hd * u, y, T, hd, u, colors[h])
        write(ax, x + heads * hd * u / 2, y + 0.2, label, size=10.5, weight="bold")
        write(ax, x + heads * hd * u / 2, y - T * u - 0.22, below, size=9.5, color=MUTED,
              family=MONO)

    split_block(0.2, top, "queries", "(b, 4, 6)")
    write(ax, 0.2 + 0.78, top - T * u - 0.65, "d_out 6 = 2 heads\n\u00d7 head_dim 3",
          size=9.5, color=MUTED)
    xs = 3.55  # the heads: room for the split's code under its arrow
    arrow(ax, (1.9, top - 0.52), (xs - 0.2, top - 0.52))
    write(ax, (1.9 + xs - 0.2) / 2, top - 0.3, "split", size=10, color=MUTED)
    write(ax, (1.9 + xs - 0.2) / 2, top - 0.72, ".view(b, 4, 2, 3)\n.transpose(1, 2)",
          size=10, family=MONO, va="top")
    for h in range(heads):
        y = top + 0.55 - h * 2.0
        shape_block(ax, xs, y, T, hd, u, colors[h], f"head {h + 1}")
        arrow(ax, (xs + hd * u + 0.08, y - 0.52), (xs + hd * u + 0.4, y - 0.52))
        box(ax, xs + hd * u + 0.45, y - 0.9, 1.7, 0.75, "causal attention\n(own part of Q, K, V)",
            colors[h], fontsize=9.5)
        arrow(ax, (xs + hd * u + 2.2, y - 0.52), (xs + hd * u + 2.52, y - 0.52))
        shape_block(ax, xs + hd * u + 2.57, y, T, hd, u, colors[h], f"context {h + 1}")
    write(ax, xs + 2.05, top - 3.05, "(b, num_heads=2, 4, head_dim=3)", size=9.5,
          color=MUTED, family=MONO)
    xe = xs + hd * u + 2.57 + hd * u  # right edge of the context blocks
    xm = xe + 1.0
    arrow(ax, (xe + 0.07, top + 0.2), (xm - 0.05, top - 0.4), rad=-0.2)
    arrow(ax, (xe + 0.07, top - 1.8), (xm - 0.05, top - 0.85), rad=0.2)
    split_block(xm, top - 0.05, "merged", "(b, 4, 6)")
    write(ax, xm + 0.78, top - T * u - 0.6, "transpose back,\nview as d_out", size=9.5,
          color=MUTED)
    arrow(ax, (xm + 0.78, top - T * u - 0.92), (xm + 0.78, top - T * u - 1.25))
    box(ax, xm - 0.1, top - T * u - 1.7, 1.75, 0.45, "out_proj (6 \u2192 6)", "teal",
        fontsize=9.5)
    write(ax, 0.2, 0.25, "One nn.Linear makes the queries of all heads; each head sees only "
          "its own columns. Keys and values are split the same way.", size=9.5, ha="left",
          color=MUTED)
    return fig

def draw_ch03_rnn_bottleneck():
    """Schematic: no numbers, only who can see what."""
    fig, ax = canvas(9.8, 5.6)
    n, step = len(CH03_TOKENS), 0.95

    def encoder(y, bottleneck):
        """Input tokens at height y, their hidden states above; returns the states' centres."""
        centres = []
        for k, name in enumerate(CH03_TOKENS):
            x = 0.3 + k * step
            box(ax, x, y, 0.8, 0.36, name, "blue", fontsize=9.5)
            color = "red" if bottleneck and k == n - 1 else "purple"
            box(ax, x + 0.12, y + 0.7, 0.56, 0.4, f"h{k + 1}", color, fontsize=9.5)
            arrow(ax, (x + 0.4, y + 0.38), (x + 0.4, y + 0.68), lw=1.0, scale=9)
            if bottleneck and k:
                arrow(ax, (x - step + 0.7, y + 0.9), (x + 0.1, y + 0.9), lw=1.0, scale=9)
            centres.append((x + 0.4, y + 1.1))
        return centres

    write(ax, 0.3, 5.35, "RNN encoder\u2013decoder: everything read must fit into the last "
          "hidden state", size=11, weight="bold", ha="left")
    encoder(3.3, bottleneck=True)
    last = 0.3 + (n - 1) * step + 0.68
    dx = 6.55
    arrow(ax, (last + 0.02, 4.2), (dx - 0.03, 4.2), color=strong("red"), lw=1.8)
    write(ax, (last + dx) / 2, 4.42, "one vector", size=9.5, color=strong("red"))
    for k in range(3):
        x = dx + k * 1.0
        box(ax, x, 4.0, 0.7, 0.4, f"s{k + 1}", "green", fontsize=9.5)
        if k:
            arrow(ax, (x - 0.3, 4.2), (x - 0.02, 4.2), lw=1.0, scale=9)
        arrow(ax, (x + 0.35, 4.42), (x + 0.35, 4.75), lw=1.0, scale=9)
        write(ax, x + 0.35, 4.9, f"output {k + 1}", size=9.5, color=strong("green"))
    write(ax, 0.3, 3.05, "the decoder (s1, s2, \u2026) sees only h6: details of early "
          "tokens fade on the way", size=9.5, ha="left", color=strong("red"))

    write(ax, 0.3, 2.45, "With attention: each output step looks at every input position",
          size=11, weight="bold", ha="left")
    states = encoder(0.45, bottleneck=False)
    sx, sy = dx + 1.0, 1.3
    box(ax, sx, sy, 0.7, 0.4, "s2", "green", fontsize=9.5)
    weights = [0.1, 0.15, 0.45, 0.1, 0.1, 0.1]  # made up: one input matters most here
    for (hx, hy), w in zip(states, weights):
        arrow(ax, (hx, hy + 0.02), (sx - 0.02, sy + 0.2), color=strong("orange"),
              lw=0.8 + 6 * w, style="-", rad=-0.15)
    arrow(ax, (sx + 0.35, sy + 0.42), (sx + 0.35, sy + 0.75), lw=1.0, scale=9)
    write(ax, sx + 0.35, sy + 0.9, "output 2", size=9.5, color=strong("green"))
    write(ax, sx + 0.85, sy + 0.2, "a weighted mix\nof h1 \u2026 h6", size=9.5, ha="left",
          color=strong("orange"))
    write(ax, 0.3, 0.12, "Schematic. Line width: how much attention an input position gets. "
          "Self-attention (this chapter) lets every token do this.", size=9.5, ha="left",
          color=MUTED)
    return fig


def trainable_query_path():
    """Section 3.3's numbers for the query journey, from the notebook's seed."""
    import torch
    x = torch.tensor(CH03_INPUTS)
    torch.manual_seed(123)
    w_query, w_key, w_value = (torch.rand(3, 2) for _ in range(3))
    query, keys, values = x[1] @ w_query, x @ w_key, x @ w_value
    scores = keys @ query
    weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
    return [t.numpy() for t in (query, keys, values, scores, weights, weights @ values)]


def floats(text):
    return np.array([float(v) for v in re.findall(r"-?\d+\.\d+", text)])


def draw_ch03_query_path():
    query, keys, values, scores, weights, context = trainable_query_path()
    nb = "ch03_attention.ipynb"
    assert np.allclose(query, floats(stored_output(nb, "de2bf635")), atol=6e-5)
    assert np.allclose(scores, floats(stored_output(nb, "f1202f21")), atol=6e-5)
    assert np.allclose(np.r_[weights, context], floats(stored_output(nb, "b74e9aed")),
                       atol=6e-5)
    fig, ax = canvas(9.8, 4.9)
    row, top = 0.5, 3.75

    def pair(v):
        return "[" + ", ".join(f"{a:.2f}" for a in v) + "]"

    write(ax, 0.15, top + 0.95, f"query q\u00b2 = x\u00b2 @ W_query = [{query[0]:.4f}, "
          f"{query[1]:.4f}]  ({CH03_TOKENS[1]})", size=11, ha="left", weight="bold",
          color=strong("orange"))
    heads = [(1.6, "keys k\u2071", "purple"), (2.95, "\u2460 q\u00b2\u00b7k\u2071", INK),
             (4.55, "\u2461 softmax(score / \u221a2)", INK), (6.55, "values v\u2071", "green")]
    for xh, head, color in heads:
        write(ax, xh, top + 0.35, head, size=10.5, weight="bold",
              color=strong(color) if color != INK else INK)
    for i, name in enumerate(CH03_TOKENS):
        y = top - (i + 1) * row + row / 2
        box(ax, 0.15, y - 0.2, 0.85, 0.4, name, "orange" if i == 1 else "blue", fontsize=10)
        write(ax, 1.6, y, pair(keys[i]), size=9.5, family=MONO, color=strong("purple"))
        arrow(ax, (2.25, y), (2.5, y), lw=1.0, scale=9)
        write(ax, 2.95, y, f"{scores[i]:.4f}", size=9.5, family=MONO)
        arrow(ax, (3.4, y), (3.65, y), lw=1.0, scale=9)
        bar = weights[i] * 6.0
        ax.add_patch(Rectangle((3.75, y - 0.15), bar, 0.3, facecolor=light("orange"),
                               edgecolor=strong("orange")))
        write(ax, 3.75 + bar + 0.07, y, f"{weights[i]:.4f}", size=9.5, ha="left", family=MONO)
        write(ax, 6.55, y, pair(values[i]), size=9.5, family=MONO, color=strong("green"))
    write(ax, 4.55, top - 6 * row - 0.25, f"weights sum to {weights.sum():.2f}", size=9.5,
          color=MUTED)
    cy = top - 3 * row
    arrow(ax, (7.25, cy), (7.6, cy))
    box(ax, 7.65, cy - 0.8, 2.05, 1.6, "", "green")
    write(ax, 8.67, cy + 0.45, "\u2462 context z\u00b2", size=10.5, weight="bold")
    write(ax, 8.67, cy + 0.05, "\u03a3\u1d62 weight\u1d62 \u00b7 v\u2071", size=10.5)
    write(ax, 8.67, cy - 0.4, f"[{context[0]:.4f}, {context[1]:.4f}]", size=9.5,
          family=MONO)
    write(ax, 0.15, 0.2, "The query meets the keys; the weights mix the values. Seed 123, "
          "torch.rand weights (3, 2), as in Section 3.3.", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch03_dropout():
    nb = "ch03_attention.ipynb"
    weights = floats(stored_output(nb, "bca6bfac")).reshape(6, 6)
    dropped = floats(stored_output(nb, "969cdfbb")).reshape(6, 6)
    p = 0.5
    kept = dropped > 0
    assert np.allclose(dropped[kept], weights[kept] / (1 - p), atol=2e-4)
    future = np.triu(np.ones((6, 6), dtype=bool), k=1)
    fig, ax = canvas(9.8, 5.1)
    cell, top = 0.56, 4.1
    x1 = 0.85
    matrix(ax, x1, top, weights, cell=cell, color="orange", fmt="{:.4f}", fontsize=9,
           vmin=0, vmax=2, masked=future, row_labels=CH03_TOKENS,
           title="causal attention weights")
    x2 = x1 + 6 * cell + 1.5
    arrow(ax, (x1 + 6 * cell + 0.6, top - 3 * cell), (x2 - 0.12, top - 3 * cell))
    write(ax, x1 + 6 * cell + 0.85, top - 3 * cell + 0.3, f"dropout\np = {p}", size=10)
    matrix(ax, x2, top, dropped, cell=cell, color="orange", fmt="{:.4f}", fontsize=9,
           vmin=0, vmax=2, masked=future | ~kept, title="after dropout (training)")
    for i, j in zip(*np.nonzero(~kept & ~future)):  # drawn over the masked cells
        cx, cy = x2 + j * cell, top - (i + 1) * cell
        ax.add_patch(Rectangle((cx, cy), cell, cell, facecolor=light("red"),
                               edgecolor="white", lw=1.2, hatch="xx"))
        write(ax, cx + cell / 2, cy + cell / 2, "0", size=10.5, color=strong("red"),
              weight="bold")
    for x, m in [(x1, weights), (x2, dropped)]:
        write(ax, x + 6 * cell + 0.28, top + 0.15, "row\nsum", size=9, color=MUTED)
        for i in range(6):
            write(ax, x + 6 * cell + 0.08, top - (i + 0.5) * cell, f"{m[i].sum():.2f}",
                  size=9, ha="left", color=MUTED)
    i, j = 4, 1  # an example of a kept weight
    write(ax, 0.2, 0.5, f"Dropped weights become 0 (red); kept ones are scaled by 1/(1 \u2212 p) "
          f"= {1 / (1 - p):.0f}, e.g. {weights[i, j]:.4f} \u2192 {dropped[i, j]:.4f}. "
          f"Row \u201c{CH03_TOKENS[1]}\u201d lost all its weights.", size=10, ha="left")
    write(ax, 0.2, 0.18, "The stored run's mask (seed 123); another machine may drop other "
          "entries. Grey: the future, already 0.", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch03_mha_steps():
    from previous_chapters import MultiHeadAttention
    mha = MultiHeadAttention(3, 2, context_length=6, dropout=0.0, num_heads=2)
    b, t, d_in, d_out = 2, 6, 3, mha.d_out
    h, hd = mha.num_heads, mha.head_dim
    printed = stored_output("ch03_attention.ipynb", "5f17fddf").splitlines()[-1]
    assert printed.endswith(f"torch.Size([{b}, {t}, {d_out}])")
    steps = [  # (node, colour, lines of its label)
        ("x", "grey", [f"batch x: ({b}, {t}, {d_in})", "(b, num_tokens, d_in)"]),
        ("proj", "blue", ["\u2460 project: W_query, W_key, W_value",
                          f"nn.Linear({d_in} \u2192 {d_out}) each",
                          f"Q, K, V: ({b}, {t}, {d_out})"]),
        ("split", "purple", [f"\u2461 split into heads: .view({b}, {t}, {h}, {hd}).transpose(1, 2)",
                             f"({b}, num_heads={h}, {t}, head_dim={hd})"]),
        ("attend", "orange", ["\u2462 attention in every head at once",
                              "Q @ K\u1d40 / \u221ahead_dim, causal mask, softmax, dropout, @ V",
                              f"({b}, {h}, {t}, {hd})"]),
        ("merge", "green", [f"\u2463 merge and mix: .transpose(1, 2).reshape({b}, {t}, {d_out})",
                            f"then out_proj nn.Linear({d_out} \u2192 {d_out})",
                            f"({b}, {t}, {d_out})"]),
    ]
    nodes = ""
    for name, color, lines in steps:
        label = "\\n".join(lines)  # DOT's line break
        nodes += f'  {name} [label="{label}", {fill(color)}];\n'
    return digraph(nodes + "  x -> proj -> split -> attend -> merge;", rankdir="TB",
                   ranksep=0.3)


FIGURES = [
    Figure("ch03_one_query", "ch03_attention.ipynb", "0d57eb89",
           "Attention for one query in three steps: dot-product scores, softmax into weights "
           "that sum to 1, then a weighted sum of the inputs.",
           "The query journey is scored against all six input vectors, the scores become "
           "softmax weights, and the weighted sum gives the context vector.",
           draw_ch03_one_query,
           "Numbers from the book's six input vectors of Section 3.1."),
    Figure("ch03_qkv_projections", "ch03_attention.ipynb", "7ca5e27d",
           "Three weight matrices project the same inputs into queries, keys and values; "
           "queries meet keys in a (tokens \u00d7 tokens) score matrix, and the weights mix "
           "the values.",
           "Matrix shapes: X (6, 3) times W_query, W_key, W_value (3, 2) gives Q, K, V "
           "(6, 2); Q times K transposed is (6, 6); weights times V is Z (6, 2).",
           draw_ch03_qkv),
    Figure("ch03_causal_mask", "ch03_attention.ipynb", "bca6bfac",
           "The causal mask removes every weight above the diagonal; renormalising the rows "
           "makes each sum to 1 again, exactly what a softmax over \u2212\u221e scores gives.",
           "Three 6 by 6 attention weight matrices: unmasked, with the upper triangle zeroed "
           "(row sums below 1), and renormalised (row sums 1).", draw_ch03_causal_mask,
           "The weights of Section 3.4: random initial weights (seed 789), so nearly uniform."),
    Figure("ch03_split_heads", "ch03_attention.ipynb", "72fec500",
           "Multi-head attention splits the d_out columns into heads, runs attention in each "
           "head separately, and puts the results back side by side before out_proj.",
           "A (4, 6) query matrix is split into two heads of 3 columns, each head attends on "
           "its own, and the two context blocks are merged back to (4, 6) and projected.",
           draw_ch03_heads),
    Figure("ch03_rnn_bottleneck", "ch03_attention.ipynb", "24d7f287",
           "An RNN encoder squeezes the whole input into its last hidden state; with attention, "
           "each output step reaches back to every input position.",
           "Top: six input tokens feed a chain of hidden states whose last one alone reaches "
           "the decoder. Bottom: a decoder step draws lines of different widths to all six "
           "input states.", draw_ch03_rnn_bottleneck,
           "Schematic: the line widths are made up."),
    Figure("ch03_query_path", "ch03_attention.ipynb", "b74e9aed",
           "With trainable weights the query is compared with the keys, the scaled scores "
           "become softmax weights, and the weights mix the values into the context vector.",
           "For the query journey: the six keys, the dot-product scores, the softmax weights "
           "as bars, the six values, and the context vector as their weighted sum.",
           draw_ch03_query_path,
           "Numbers of Section 3.3 (seed 123), the same as the cells above print."),
    Figure("ch03_dropout", "ch03_attention.ipynb", "969cdfbb",
           "Dropout zeroes about half of the attention weights and doubles the rest, so rows no "
           "longer sum to 1 during training, only on average.",
           "Two 6 by 6 weight matrices: the causal attention weights, and the same after "
           "dropout with p 0.5, the dropped entries red and zero, the kept ones doubled.",
           draw_ch03_dropout, "The matrices the two cells above print (stored run)."),
    Figure("ch03_mha_steps", "ch03_attention.ipynb", "5f17fddf",
           "MultiHeadAttention in four steps: project once for all heads, split into heads, "
           "attend in each head, merge the heads and mix them with out_proj.",
           "Five stacked boxes with the tensor shape after each step: input (2, 6, 3), Q K V "
           "(2, 6, 2), heads (2, 2, 6, 1), attention output (2, 2, 6, 1), merged (2, 6, 2).",
           draw_ch03_mha_steps,
           "Shapes of the cell above: MultiHeadAttention(d_in=3, d_out=2, num_heads=2) on "
           "the batch of two sentences."),
]
