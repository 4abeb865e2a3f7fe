"""The figures of Chapter 2: text to token IDs to embedding vectors."""

from matplotlib.patches import Rectangle

from tools.figures.style import (
    Figure, INK, MONO, MUTED, arrow, blend, box, canvas, data_file, matrix, show_token, strong,
    tokenizer, write)


def draw_ch02_pipeline():
    import torch
    tok = tokenizer()
    text = "It was parked on the sunlit terrace."
    ids = tok.encode(text)
    pieces = [tok.decode([i]) for i in ids]
    torch.manual_seed(123)
    emb = torch.nn.Embedding(tok.n_vocab, 4)
    with torch.no_grad():
        vectors = emb(torch.tensor(ids)).numpy()

    n = len(ids)
    row = 0.42
    height = n * row + 1.5
    fig, ax = canvas(9.6, height)
    top = height - 1.0
    cols = [0.25, 2.95, 4.85, 6.35]
    heads = ["text", "tokens", "token IDs", "embedding vectors"]
    notes = ["a string", "tokenizer.encode splits it", "one integer per token",
             "nn.Embedding looks up one row per ID"]
    xs_head = [cols[0] + 1.1, cols[1] + 0.8, cols[2] + 0.55, cols[3] + 1.45]
    for xh, head, note in zip(xs_head, heads, notes):
        write(ax, xh, height - 0.3, head, size=12, weight="bold")
        write(ax, xh, height - 0.6, note, size=9.5, color=MUTED)
    mid = top - n * row / 2
    box(ax, cols[0], mid - 0.45, 2.2, 0.9, "\u201cIt was parked on\nthe sunlit terrace.\u201d",
        "grey", fontsize=10.5, fill="white")
    assert text == "It was parked on the sunlit terrace."
    arrow(ax, (cols[0] + 2.25, mid), (cols[1] - 0.1, mid))
    lo, hi = vectors.min(), vectors.max()
    for k, (piece, tid, vec) in enumerate(zip(pieces, ids, vectors)):
        y = top - (k + 1) * row + 0.05
        box(ax, cols[1], y, 1.6, row - 0.1, repr(show_token(piece))[1:-1], "blue",
            fontsize=10, family=MONO)
        arrow(ax, (cols[1] + 1.65, y + (row - 0.1) / 2), (cols[2] - 0.05, y + (row - 0.1) / 2),
              lw=1.0, scale=10)
        box(ax, cols[2], y, 1.1, row - 0.1, str(tid), "purple", fontsize=10, family=MONO)
        arrow(ax, (cols[2] + 1.15, y + (row - 0.1) / 2), (cols[3] - 0.05, y + (row - 0.1) / 2),
              lw=1.0, scale=10)
        for j, v in enumerate(vec):
            t = 0.1 + 0.75 * (v - lo) / (hi - lo)
            ax.add_patch(Rectangle((cols[3] + j * 0.72, y), 0.72, row - 0.1,
                                   facecolor=blend(strong("green"), t), edgecolor="white"))
            write(ax, cols[3] + j * 0.72 + 0.36, y + (row - 0.1) / 2, f"{v:+.2f}", size=9,
                  color="white" if t > 0.55 else INK)
    write(ax, cols[1] + 0.8, top - n * row - 0.25,
          "\u2423 marks a space: GPT-2 keeps it inside the token", size=9, color=MUTED)
    return fig


def draw_ch02_sliding_window():
    from previous_chapters import GPTDatasetV1
    tok = tokenizer()
    raw = data_file("the-verdict.txt").read_text(encoding="utf-8")
    start_text = raw[:400]
    strip_ids = tok.encode(start_text)[:12]
    strip = [show_token(tok.decode([i])) for i in strip_ids]
    cell = 0.66
    x0 = 1.55
    fig, ax = canvas(9.6, 7.0)

    def token_strip(y):
        for k, piece in enumerate(strip):
            box(ax, x0 + k * cell + 0.02, y, cell - 0.04, 0.38, piece, "grey", fontsize=8,
                fill="white", lw=1.0, family=MONO)
            write(ax, x0 + (k + 0.5) * cell, y - 0.12, str(k), size=8, color=MUTED)

    y = 6.65
    for stride, title in [(1, "stride = 1: a new window at every token; neighbours overlap "
                              "in 3 of 4 tokens"),
                          (4, "stride = 4 (= max_length): windows follow each other, "
                              "no overlap")]:
        dataset = GPTDatasetV1(start_text, tok, max_length=4, stride=stride)
        write(ax, 0.15, y, title, size=11, weight="bold", ha="left")
        token_strip(y - 0.62)
        write(ax, x0 - 0.12, y - 0.43, "token stream", size=9, ha="right", color=MUTED)
        yy = y - 0.95
        n_windows = 3 if stride == 1 else 2
        for w in range(n_windows):
            x_ids, y_ids = (t.tolist() for t in dataset[w])
            s = w * stride
            assert strip_ids[s:s + 4] == x_ids and strip_ids[s + 1:s + 5] == y_ids
            for row_k, (ids, name, color, off) in enumerate(
                    [(x_ids, "input", "blue", 0), (y_ids, "target", "green", 1)]):
                ry = yy - row_k * 0.36
                for k in range(4):
                    box(ax, x0 + (s + off + k) * cell + 0.02, ry - 0.31, cell - 0.04, 0.31,
                        str(ids[k]), color, fontsize=8, family=MONO, lw=1.0)
                write(ax, x0 - 0.12, ry - 0.155, f"window {w} {name}", size=9, ha="right",
                      color=strong(color))
            yy -= 0.85
        y = yy - 0.3
    write(ax, 9.45, 0.2, "Token IDs from GPTDatasetV1(max_length=4) on the start of The "
          "Verdict; each target row is its input moved one token right.", size=9,
          color=MUTED, ha="right")
    return fig


def draw_ch02_token_plus_position():
    import torch
    tok = tokenizer()
    ids = tok.encode(" be or not to be")
    pieces = [show_token(tok.decode([i])) for i in ids]
    n, dim = len(ids), 5
    torch.manual_seed(123)
    tok_emb = torch.nn.Embedding(tok.n_vocab, dim)
    pos_emb = torch.nn.Embedding(n, dim)
    with torch.no_grad():
        t = tok_emb(torch.tensor(ids)).numpy()
        p = pos_emb(torch.arange(n)).numpy()
    s = t + p
    vmin, vmax = min(t.min(), p.min(), s.min()), max(t.max(), p.max(), s.max())
    fig, ax = canvas(9.8, 4.4)
    cell = 0.44
    top = 3.5
    x1 = 1.3
    matrix(ax, x1, top, t, cell=cell, color="blue", fmt="{:+.1f}", vmin=vmin, vmax=vmax,
           row_labels=pieces, title="token embeddings")
    x2 = x1 + dim * cell + 0.55
    write(ax, x2 - 0.28, top - n * cell / 2, "+", size=20, weight="bold")
    matrix(ax, x2, top, p, cell=cell, color="purple", fmt="{:+.1f}", vmin=vmin, vmax=vmax,
           title="position embeddings")
    for i in range(n):
        write(ax, x2 + dim * cell + 0.1, top - (i + 0.5) * cell, f"pos {i}", size=9,
              ha="left", color=strong("purple"))
    x3 = x2 + dim * cell + 1.15
    write(ax, x3 - 0.3, top - n * cell / 2, "=", size=20, weight="bold")
    matrix(ax, x3, top, s, cell=cell, color="green", fmt="{:+.1f}", vmin=vmin, vmax=vmax,
           title="input embeddings")
    # the repeated token: same token row, different sums
    rep = [i for i in range(n) if ids[i] == ids[0]]
    for i in rep:
        ax.add_patch(Rectangle((x1 - 0.03, top - (i + 1) * cell - 0.03), dim * cell + 0.06,
                               cell + 0.06, fill=False, edgecolor=strong("orange"), lw=2.2))
        ax.add_patch(Rectangle((x3 - 0.03, top - (i + 1) * cell - 0.03), dim * cell + 0.06,
                               cell + 0.06, fill=False, edgecolor=strong("orange"), lw=2.2,
                               ls="--"))
    write(ax, 0.2, 0.45, f"\u201c{pieces[0]}\u201d appears at positions {rep[0]} and {rep[-1]}: "
          "identical token rows (solid), different input rows (dashed).",
          size=10, ha="left", color=strong("orange"))
    write(ax, 0.2, 0.15, f"Random, untrained embeddings (seed 123), {dim} numbers per token "
          "instead of GPT-2's 768.", size=9.5, ha="left", color=MUTED)
    return fig


FIGURES = [
    Figure("ch02_text_to_embeddings", "ch02_text_data.ipynb", "91598872",
           "From text to vectors: the tokenizer cuts text into tokens, each token gets an "
           "integer ID, and an embedding layer turns each ID into a vector of numbers.",
           "A sentence is split into GPT-2 tokens, each token mapped to its token ID, and "
           "each ID to a row of four embedding values.", draw_ch02_pipeline,
           "Token IDs from GPT-2's tokenizer; the vectors are rows of a random, untrained "
           "nn.Embedding (seed 123), 4 numbers wide."),
    Figure("ch02_sliding_window", "ch02_text_data.ipynb", "4ea6a5aa",
           "Every window of max_length tokens is an input; its target is the same window moved "
           "one token right. The stride sets how far the next window starts.",
           "The first tokens of The Verdict with input and target windows of 4 tokens, for "
           "stride 1 (overlapping) and stride 4 (back to back).", draw_ch02_sliding_window,
           "Token IDs from GPTDatasetV1 on the start of The Verdict."),
    Figure("ch02_token_plus_position", "ch02_text_data.ipynb", "6f3b7a9c",
           "The model's input is token embedding plus position embedding: the same token at "
           "two positions enters the model as two different vectors.",
           "Three small matrices: token embeddings plus position embeddings equal input "
           "embeddings; the repeated token has equal token rows but different sums.",
           draw_ch02_token_plus_position,
           "Random, untrained embeddings (seed 123), 5 numbers per token."),
]
