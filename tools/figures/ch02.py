"""The figures of Chapter 2: text to token IDs to embedding vectors."""

import re

import numpy as np
from matplotlib.patches import Rectangle

from tools.figures.style import (
    Figure, INK, MONO, MUTED, arrow, blend, box, canvas, data_file, digraph, fill, matrix,
    show_token, stored_output, strong, tokenizer, write)


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


def draw_ch02_embedding_space():
    """Schematic: made-up 2-D positions, to show what "similar words, similar vectors" means."""
    groups = [  # (colour, what the words share, [(word, x, y), ...])
        ("blue", "animals", [("cat", 1.2, 3.3), ("dog", 1.7, 3.6), ("puppy", 1.9, 3.15),
                             ("kitten", 1.0, 2.85), ("horse", 2.3, 3.75)]),
        ("orange", "royalty", [("king", 6.6, 3.5), ("queen", 7.3, 3.25), ("prince", 6.4, 3.0),
                               ("princess", 7.2, 2.75)]),
        ("green", "fruit", [("apple", 2.0, 1.05), ("banana", 2.7, 0.75), ("cherry", 1.5, 0.65),
                            ("pear", 2.6, 1.35)]),
        ("purple", "movement verbs", [("run", 5.6, 1.1), ("walk", 6.2, 0.85),
                                      ("jump", 5.9, 1.5), ("swim", 6.7, 1.25)]),
    ]
    fig, ax = canvas(8.6, 4.6)
    ox, oy = 0.5, 0.3  # the plot's origin
    arrow(ax, (ox, oy), (8.3, oy), color=MUTED, lw=1.2)
    arrow(ax, (ox, oy), (ox, 4.35), color=MUTED, lw=1.2)
    write(ax, 8.3, oy - 0.18, "dimension 1", size=9.5, color=MUTED, ha="right", va="top")
    write(ax, ox - 0.12, 4.35, "dimension 2", size=9.5, color=MUTED, ha="right", va="top",
          rotation=90)
    for color, topic, words in groups:
        for word, x, y in words:
            ax.plot(x + ox, y + oy, "o", color=strong(color), markersize=7)
            write(ax, x + ox + 0.1, y + oy, word, size=10.5, ha="left")
        cx = np.mean([x for _, x, _ in words]) + ox
        top_y = max(y for _, _, y in words) + oy
        write(ax, cx, top_y + 0.35, topic, size=10, color=strong(color), weight="bold")
    write(ax, 4.6, 3.1, "words used alike end up close together", size=9.5, color=MUTED)
    write(ax, 8.3, 4.45, "schematic: 2 of the hundreds of dimensions", size=9.5,
          color=MUTED, ha="right")
    return fig


def verdict_vocab():
    """The vocabulary of Section 2.2: the story's sorted unique tokens, numbered from 0."""
    import re

    from previous_chapters import TOKEN_PATTERN
    raw = data_file("the-verdict.txt").read_text(encoding="utf-8")
    words = sorted({p for p in re.split(TOKEN_PATTERN, raw) if p.strip()})
    return {token: token_id for token_id, token in enumerate(words)}


def ints(text):
    return [int(i) for i in re.findall(r"-?\d+", text)]


def column_widths(rows, char=0.082, pad=0.18):
    """One width per column, enough for the longest label of that column in any row."""
    return [pad + char * max(len(label) for label in column) for column in zip(*rows)]


def token_row(ax, x, y, labels, widths, colors, h=0.38, size=9.5, gap=0.06):
    """Boxes side by side in columns of the given widths; returns the centre x of each."""
    centres = []
    for label, w, color in zip(labels, widths, colors):
        box(ax, x, y, w, h, label, color, fontsize=size, family=MONO, lw=1.1)
        centres.append(x + w / 2)
        x += w + gap
    return centres


def draw_ch02_vocab_lookup():
    from previous_chapters import SimpleTokenizerV1
    vocab = verdict_vocab()
    tok = SimpleTokenizerV1(vocab)
    text = '"It\'s the last he painted, you know," Mrs. Gisburn said with pardonable pride.'
    ids = tok.encode(text)
    assert ids == ints(stored_output("ch02_text_data.ipynb", "affe152c"))
    n = 8  # the first tokens of the sentence
    pieces, shown_ids = tok.split(text)[:n], [str(i) for i in ids[:n]]
    back = [tok.id_to_token[i] for i in ids[:n]]
    fig, ax = canvas(9.8, 3.9)
    # left: the vocabulary entries used, sorted by ID as the notebook prints them
    write(ax, 1.2, 3.65, "vocab (token \u2192 ID)", size=11, weight="bold")
    y = 3.25
    used = sorted(set(ids[:n]))
    for k, tid in enumerate(used):
        if k and tid > used[k - 1] + 1:
            write(ax, 1.2, y + 0.06, "\u22ee", size=10, color=MUTED)
            y -= 0.24
        write(ax, 0.95, y, repr(tok.id_to_token[tid]), size=9.5, family=MONO, ha="right")
        write(ax, 1.2, y, "\u2192", size=9.5, color=MUTED)
        write(ax, 1.45, y, str(tid), size=9.5, family=MONO, ha="left", color=strong("purple"))
        y -= 0.3
    write(ax, 1.2, y + 0.06, "\u22ee", size=10, color=MUTED)
    write(ax, 1.2, y - 0.25, f"{len(vocab):,} entries in all", size=9.5, color=MUTED)
    # right: encode, then decode, one column per token
    x0 = 2.8
    widths = column_widths([pieces, shown_ids], char=0.095, pad=0.22)
    write(ax, x0, 3.65, "text: " + text[:27] + "\u2026", size=10.5, ha="left", family=MONO)
    top = token_row(ax, x0, 2.85, pieces, widths, ["blue"] * n)
    token_row(ax, x0, 1.75, shown_ids, widths, ["purple"] * n)
    token_row(ax, x0, 0.65, back, widths, ["green"] * n)
    for c in top:
        arrow(ax, (c, 2.82), (c, 2.16), lw=1.0, scale=9, color=strong("blue"))
        arrow(ax, (c, 1.72), (c, 1.06), lw=1.0, scale=9, color=strong("green"))
    right = x0 + sum(widths) + 0.06 * n + 0.25
    write(ax, right, 3.04, "tokens", size=10, ha="left", color=strong("blue"))
    write(ax, right, 2.49, "encode: vocab[token]", size=10, ha="left", weight="bold",
          color=strong("blue"))
    write(ax, right, 1.94, "token IDs", size=10, ha="left", color=strong("purple"))
    write(ax, right, 1.39, "decode: id_to_token[ID]", size=10, ha="left", weight="bold",
          color=strong("green"))
    write(ax, right, 0.84, "the same tokens", size=10, ha="left", color=strong("green"))
    write(ax, x0, 0.35, "decode then joins the tokens and puts the spaces back by its rules",
          size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch02_special_tokens():
    from previous_chapters import SimpleTokenizerV2
    tok = SimpleTokenizerV2(verdict_vocab())
    joined = "Jack bought a spaceship. <|endoftext|> It was parked on the sunlit terrace."
    ids = tok.encode(joined)
    printed = stored_output("ch02_text_data.ipynb", "7e84bd1d").splitlines()
    assert ids == ints(printed[1]) and tok.decode(ids) == printed[2]
    eot, unk = tok.token_to_id["<|endoftext|>"], tok.unk_id
    kinds = ["orange" if i == eot else "red" if i == unk else "blue" for i in ids]
    words, shown_ids = tok.split(joined), [str(i) for i in ids]
    widths = column_widths([words, shown_ids], char=0.078, pad=0.16)
    fig, ax = canvas(10.4, 3.4)
    x0 = 1.45
    top = token_row(ax, x0, 2.2, words, widths, kinds)
    token_row(ax, x0, 1.5, shown_ids, widths, kinds)
    for c, tid in zip(top, ids):
        arrow(ax, (c, 2.17), (c, 1.91), lw=0.9, scale=8, color=MUTED)
        if tid == unk:
            write(ax, c, 1.3, "<|unk|>", size=9, color=strong("red"), family=MONO)
    write(ax, x0 - 0.12, 2.39, "tokens", size=10, ha="right")
    write(ax, x0 - 0.12, 1.69, "token IDs", size=10, ha="right")
    k_eot = ids.index(eot)
    for first, last, name in [(0, k_eot - 1, "text 1"), (k_eot + 1, len(ids) - 1, "text 2")]:
        a, b = top[first] - widths[first] / 2, top[last] + widths[last] / 2
        ax.plot([a, a, b, b], [2.72, 2.8, 2.8, 2.72], color=INK, lw=1.0)
        write(ax, (a + b) / 2, 3.0, name, size=10.5, weight="bold")
    write(ax, top[k_eot], 3.0, "boundary", size=10, color=strong("orange"), weight="bold")
    write(ax, 0.2, 0.8, f"<|endoftext|> ({eot}) separates two unrelated texts in one stream; "
          f"every word the story never uses becomes <|unk|> ({unk}).", size=10, ha="left")
    write(ax, 0.2, 0.45, "decode: " + printed[2], size=9.5, ha="left", family=MONO,
          color=MUTED)
    return fig

def draw_ch02_bpe_split():
    tok = tokenizer()
    printed = stored_output("ch02_text_data.ipynb", "eb48e87b")
    assert tok.encode("Akwirw ier") == ints(printed)  # one "ID -> piece" line per token
    sentence = str(ints(stored_output("ch02_text_data.ipynb", "3dc4abed").splitlines()[0]))
    words = [" spaceship", " someunknownPlace", "Akwirw ier"]
    fig, ax = canvas(9.8, 3.3)
    y = 2.7
    for word in words:
        ids = tok.encode(word)
        assert str(ids)[1:-1] in sentence or word == "Akwirw ier"  # as the cells print them
        pieces = [show_token(tok.decode([i])) for i in ids]
        write(ax, 2.3, y, repr(show_token(word)), size=10.5, family=MONO, ha="right")
        arrow(ax, (2.45, y), (2.95, y), lw=1.1, scale=10)
        widths = column_widths([pieces, [str(i) for i in ids]], char=0.09, pad=0.22)
        centres = token_row(ax, 3.1, y - 0.19, pieces, widths, ["blue"] * len(ids))
        for c, i in zip(centres, ids):
            write(ax, c, y - 0.37, str(i), size=9.5, family=MONO, color=strong("purple"),
                  va="top")
        end = 3.1 + sum(widths) + 0.06 * len(ids)
        write(ax, end + 0.2, y, f"{len(ids)} token" + ("s" if len(ids) > 1 else ""),
              size=10, ha="left", color=MUTED)
        y -= 0.95
    write(ax, 0.2, 0.1, "\u2423 marks a space. Pieces above, their IDs below; decoding joins "
          "them back into exactly the text on the left.", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch02_embedding_lookup():
    import torch
    torch.manual_seed(123)  # as in the notebook's cell
    weight = torch.nn.Embedding(6, 3).weight.detach().numpy()
    ids = [2, 3, 5, 1]  # input_ids of the notebook
    rows = weight[ids]
    for cell_id, shown in [("6102e8f2", weight), ("988ec35e", rows)]:
        printed = re.findall(r"-?\d+\.\d+", stored_output("ch02_text_data.ipynb", cell_id))
        assert np.allclose(shown.ravel(), [float(v) for v in printed], atol=6e-5)
    one_hot = np.eye(6)[ids]
    fig, ax = canvas(9.8, 5.3)
    small, cell, top = 0.5, 0.66, 4.7
    mid = top - 3 * cell
    x1 = 0.85
    matrix(ax, x1, mid + 2 * small, one_hot, cell=small, color="blue", fmt="{:.0f}",
           fontsize=10, vmin=0, vmax=1.2, row_labels=[f"ID {i}" for i in ids],
           col_labels=[str(j) for j in range(6)], title="one-hot (4, 6)")
    x2 = x1 + 6 * small + 0.6
    write(ax, x2 - 0.3, mid, "@", size=18)
    matrix(ax, x2, top, weight, cell=cell, color="green", fmt="{:.4f}", fontsize=9,
           title="weight (6, 3)")
    for j in range(6):
        write(ax, x2 + 3 * cell + 0.08, top - (j + 0.5) * cell, f"row {j}", size=9,
              ha="left", color=MUTED)
    x3 = x2 + 3 * cell + 1.05
    write(ax, x3 - 0.3, mid, "=", size=18)
    matrix(ax, x3, mid + 2 * cell, rows, cell=cell, color="green", fmt="{:.4f}", fontsize=9,
           title="embeddings (4, 3)")
    d = 0.05  # outlines sit inside the cells, so neighbouring rows don't overlap
    for k, (i, color) in enumerate(zip(ids, ["orange", "purple", "red", "teal"])):
        edge = {"fill": False, "edgecolor": strong(color), "lw": 2.4}
        ax.add_patch(Rectangle((x1 + i * small + d, mid + (1 - k) * small + d),
                               small - 2 * d, small - 2 * d, **edge))
        ax.add_patch(Rectangle((x2 + d, top - (i + 1) * cell + d), 3 * cell - 2 * d,
                               cell - 2 * d, **edge))
        ax.add_patch(Rectangle((x3 + d, mid + (1 - k) * cell + d), 3 * cell - 2 * d,
                               cell - 2 * d, **edge))
    write(ax, 0.2, 0.4, "The 1 in column ID picks row ID of the weight matrix (same colour), "
          "so the product equals embedding_layer(input_ids).", size=10, ha="left")
    write(ax, 0.2, 0.1, "nn.Embedding reads the row directly and skips the multiplications "
          "by zero.", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch02_data_pipeline():
    """Section 2.7's numbers, as the stored run printed them."""
    def printed(cell):
        return ints(stored_output("ch02_text_data.ipynb", cell).splitlines()[0])
    chars, n_ids, shape = printed("a69a763e")[0], printed("e4377500")[-1], printed("e2d7b70c")
    windows, _, batches, left = ints(stored_output("ch02_text_data.ipynb", "b6b2de62"))
    return digraph(f"""
  text [label="the-verdict.txt\n{chars:,}\ncharacters", {fill("grey")}];
  ids [label="tokenizer\n.encode\n{n_ids:,} IDs"];
  windows [label="GPTDatasetV1\nmax_length=4\nstride=4\n{windows:,} windows", {fill("purple")}];
  loader [label="DataLoader\nbatch_size=8\ndrop_last=True", {fill("orange")}];
  batch [label="one batch\ninputs ({shape[0]}, {shape[1]})\ntargets ({shape[0]}, {shape[1]})",
         {fill("green")}];
  rest [label="{left} windows\nleft over:\ndropped", {fill("red")}];
  text -> ids -> windows -> loader;
  loader -> batch [label="{batches}\nbatches"];
  loader -> rest [style=dashed];
""", rankdir="LR")


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
        # rounded to the one decimal shown *before* adding, so that the shown sums add up
        # (+ 0.0 turns -0.0 into 0.0)
        t = np.round(tok_emb(torch.tensor(ids)).numpy(), 1) + 0.0
        p = np.round(pos_emb(torch.arange(n)).numpy(), 1) + 0.0
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
          "instead of GPT-2's 768, rounded to one decimal before adding.", size=9.5,
          ha="left", color=MUTED)
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
           "Random, untrained embeddings (seed 123), 5 numbers per token, rounded to one "
           "decimal before adding, so every sum is exact."),
    Figure("ch02_embedding_space", "ch02_text_data.ipynb", "da49fe08",
           "An embedding space: every word is a point, and words used in similar ways sit close "
           "together, here four clusters.",
           "A 2-D scatter of word vectors: animals, royalty, fruit and movement verbs each form "
           "their own cluster of nearby points.", draw_ch02_embedding_space,
           "Schematic: made-up positions in 2 dimensions; real embeddings are learned and have "
           "hundreds."),
    Figure("ch02_vocab_lookup", "ch02_text_data.ipynb", "1953a9bc",
           "The vocabulary is a lookup in both directions: encode maps each token to its ID, "
           "decode maps the IDs back to the same tokens.",
           "An excerpt of the story's vocabulary beside the first nine tokens of the sentence, "
           "their IDs from encode, and the tokens decode gives back.", draw_ch02_vocab_lookup,
           "IDs from SimpleTokenizerV1 on the story's vocabulary of 1,130 tokens, as the cells "
           "above print them."),
    Figure("ch02_special_tokens", "ch02_text_data.ipynb", "7e84bd1d",
           "<|endoftext|> marks where one text ends and the next begins; every word outside the "
           "vocabulary gets the same ID, <|unk|>.",
           "The two joined sentences as tokens with their IDs: the boundary token 1130 between "
           "them, and the three unknown words all mapped to 1131.", draw_ch02_special_tokens,
           "IDs from SimpleTokenizerV2, as the cell above prints them."),
    Figure("ch02_bpe_split", "ch02_text_data.ipynb", "eb48e87b",
           "A word GPT-2's vocabulary knows is one token; an unknown word is spelled out of "
           "known sub-word pieces, so nothing is ever unknown.",
           "Three strings and their GPT-2 tokens with IDs: spaceship is one token, "
           "someunknownPlace three, and Akwirw ier six small pieces.", draw_ch02_bpe_split,
           "GPT-2's tokenizer (tiktoken), the IDs the cells above print."),
    Figure("ch02_embedding_lookup", "ch02_text_data.ipynb", "ch02-one-hot",
           "Multiplying a one-hot row by the weight matrix picks one row of it: an embedding "
           "lookup is exactly that, without the multiplications.",
           "The one-hot matrix of the IDs 2, 3, 5, 1 times the 6 by 3 embedding weight matrix "
           "equals its rows 2, 3, 5 and 1, each pair outlined in one colour.",
           draw_ch02_embedding_lookup,
           "The notebook's nn.Embedding(6, 3) (seed 123), as the cells above print it."),
    Figure("ch02_data_pipeline", "ch02_text_data.ipynb", "b6b2de62",
           "From the story to training batches: token IDs, windows of 4 with their targets, "
           "and batches of 8 windows; the windows that don't fill a batch are dropped.",
           "A pipeline from the-verdict.txt to token IDs, GPTDatasetV1 windows and a "
           "DataLoader that yields batches of inputs and targets of shape (8, 4).",
           draw_ch02_data_pipeline, "Numbers from the stored outputs of this section."),
]
