"""The figures of Chapter 4: the GPT model."""

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
    box(ax, x, 6.1, w / 2 - 0.05, 0.6, "token\nembedding", "blue", fontsize=9.5)
    box(ax, cx + 0.05, 6.1, w / 2 - 0.05, 0.6, "position\nembedding", "purple", fontsize=9.5)
    write(ax, x - 0.25, 6.55, f"{param_count(model.tok_emb):,}", size=9.5, ha="right",
          family=MONO, color=strong("blue"))
    write(ax, x - 0.25, 6.25, f"{param_count(model.pos_emb):,}", size=9.5, ha="right",
          family=MONO, color=strong("purple"))
    write(ax, x + w + 0.25, 6.4, f"(batch, num_tokens, {D})", size=9.5, ha="left",
          family=MONO, color=MUTED)
    arrow(ax, (cx, 6.1), (cx, 5.85))
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


def draw_ch04_generation_loop():
    """Section 4.7's loop, with the IDs its stored run printed."""
    import re
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
]
