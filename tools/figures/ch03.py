"""The figures of Chapter 3: attention."""

import numpy as np
from matplotlib.patches import Rectangle

from tools.figures.style import (
    CH03_INPUTS, CH03_SEED, CH03_TOKENS, Figure, MONO, MUTED, arrow, box, canvas, light,
    matrix, shape_block, strong, write)


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
    fig, ax = canvas(9.8, 4.9)
    u = 0.26
    T, heads, hd = 4, 2, 3
    top = 3.75
    colors = ["orange", "purple"]

    def split_block(x, y, label, below):
        for h in range(heads):
            shape_block(ax, x + h * hd * u, y, T, hd, u, colors[h])
        write(ax, x + heads * hd * u / 2, y + 0.2, label, size=10.5, weight="bold")
        write(ax, x + heads * hd * u / 2, y - T * u - 0.22, below, size=8.5, color=MUTED,
              family=MONO)

    split_block(0.2, top, "queries", "(b, 4, 6)")
    write(ax, 0.2 + 0.78, top - T * u - 0.6, "d_out 6 = 2 heads\n\u00d7 head_dim 3",
          size=8.5, color=MUTED)
    arrow(ax, (1.9, top - 0.52), (2.75, top - 0.52))
    write(ax, 2.32, top - 0.3, "split", size=9, color=MUTED)
    write(ax, 2.32, top - 0.75, ".view\n.transpose(1,2)", size=7.5, family=MONO, va="top")
    xs = 2.95
    for h in range(heads):
        y = top + 0.55 - h * 2.0
        shape_block(ax, xs, y, T, hd, u, colors[h], f"head {h + 1}")
        arrow(ax, (xs + hd * u + 0.08, y - 0.52), (xs + hd * u + 0.4, y - 0.52))
        box(ax, xs + hd * u + 0.45, y - 0.9, 1.6, 0.75, "causal attention\n(own part of Q, K, V)",
            colors[h], fontsize=8.5)
        arrow(ax, (xs + hd * u + 2.1, y - 0.52), (xs + hd * u + 2.42, y - 0.52))
        shape_block(ax, xs + hd * u + 2.47, y, T, hd, u, colors[h], f"context {h + 1}")
    write(ax, xs + 2.0, top - 3.05, "(b, num_heads=2, 4, head_dim=3)", size=8.5,
          color=MUTED, family=MONO)
    xm = 8.1
    arrow(ax, (7.05, top + 0.2), (xm - 0.05, top - 0.4), rad=-0.2)
    arrow(ax, (7.05, top - 1.8), (xm - 0.05, top - 0.85), rad=0.2)
    split_block(xm, top - 0.05, "merged", "(b, 4, 6)")
    write(ax, xm + 0.78, top - T * u - 0.55, "transpose back,\nview as d_out", size=8.5,
          color=MUTED)
    arrow(ax, (xm + 0.78, top - T * u - 0.85), (xm + 0.78, top - T * u - 1.2))
    box(ax, xm - 0.1, top - T * u - 1.65, 1.75, 0.45, "out_proj (6 \u2192 6)", "teal",
        fontsize=9)
    write(ax, 0.2, 0.25, "One nn.Linear makes the queries of all heads; each head sees only "
          "its own columns. Keys and values are split the same way.", size=9.5, ha="left",
          color=MUTED)
    return fig


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
]
