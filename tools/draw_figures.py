"""Draw the course's diagrams, check them, and embed them in the chapter notebooks.

    python tools/draw_figures.py            # draw every figure into figures/ (SVG + PNG)
    python tools/draw_figures.py --check    # fail if figures/ differs from what this draws
    python tools/draw_figures.py --embed    # insert/refresh one markdown cell per figure
    python tools/draw_figures.py --embed --check   # fail if a notebook's figure is stale

Every diagram is drawn with matplotlib in one style (STYLE below: DejaVu Sans, which ships
with matplotlib, one palette, one arrow style). Where a figure shows numbers, they are
computed here with the course's own code (`previous_chapters`, tiktoken, the course data
files), and the caption says what they are.

Where figures go. `FIGURES` names, for every figure, its notebook and the `id` of the cell
it follows (an anchor). `--embed` writes a markdown cell right after the anchor holding the
PNG as an inline `data:image/png;base64` URI, the alt text and a one-line caption; the
cell's metadata `{"figure": NAME}` marks it, so running `--embed` again replaces the cell
instead of adding a copy (and moves it if the anchor moved). A missing anchor is an error
that names the figure. Only these markdown cells are touched; code cells and outputs never.
The notebooks are written back as `json.dump(indent=1, ensure_ascii=False)` plus a newline,
the format they already use.

Why inline data URIs and not cell attachments: Colab does not render markdown-cell
attachments (googlecolab/colabtools#3836; Colab itself stores pasted images as data
URIs), while JupyterLab (it skips `src` validation so embedded data shows, see
jupyterlab/jupyterlab#5183), nbconvert's HTML and GitHub's notebook viewer all render
data-URI images in markdown (inlining the image as base64 is the usual fix for markdown
images that GitHub did not show, e.g. ajwdewit/pcse_notebooks#8). Relative paths to
figures/ would break in Colab, where the files next to a notebook are not there.

How --check stays deterministic and survives matplotlib updates. CI installs the newest
matplotlib, whose SVG bytes and anti-aliasing may change in harmless ways. So:
  * drawing is deterministic: fixed `svg.hashsalt`, no dates or software names in the
    metadata, DejaVu Sans only, seeded torch, text kept as text in the SVG (`svg.fonttype`
    "none");
  * the PNGs are reduced to 256 indexed colours with Pillow (deterministic too), which
    makes them a third of the size;
  * with the same matplotlib and Pillow versions as recorded in figures/manifest.json, the
    SVG bytes and the PNG pixels must be identical;
  * with other versions, the text of every figure (every string in the SVG) must be
    identical, and the PNG may differ only slightly: width and height within
    MAX_SIZE_CHANGE, and, after the best shift by up to 2 pixels, grey levels averaged
    over 4x4 blocks with a root mean square change below RMS_TOLERANCE and at most
    CHANGED_FRACTION of the blocks changed by more than BLOCK_CHANGE of 255.
    So a changed label or number always fails (on the text); a new anti-aliasing or text
    rendering of the same drawing passes, and so can a small change of a shape. That
    looser check is only a bridge: redrawing with the current versions (the command in
    the failure message) brings back the exact one. (matplotlib's wheels build a pinned
    FreeType to keep text rendering stable between releases; turning hinting off
    altogether, a far bigger change than a release makes, still passes these limits.)
Drawing and checking all twenty figures takes about half a minute of CPU time.
"""

import argparse
import base64
import html
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402
from matplotlib.spines import Spine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

FIGURES_DIR = ROOT / "figures"
MANIFEST = "manifest.json"
DPI = 100                 # PNG pixels per inch: a 9-inch figure is 900 pixels wide
# Only used when the committed figures were drawn with other matplotlib/Pillow versions:
RMS_TOLERANCE = 16.0      # root mean square change of 4x4-block grey levels (0-255)
BLOCK_CHANGE = 80         # a 4x4 block "changed a lot": its grey level moved this much
CHANGED_FRACTION = 0.02   # share of 4x4 blocks that may change a lot
MAX_SIZE_CHANGE = 0.03    # relative change of width or height (text measured differently)
FIX = "run `python tools/draw_figures.py` (and `--embed`) and commit the result"

# ----------------------------------------------------------------------------------------
# One visual style
# ----------------------------------------------------------------------------------------

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 11,
    "svg.fonttype": "none",
    "svg.hashsalt": "llm-course-figures",
    "axes.edgecolor": "#3d4852",
    "axes.labelcolor": "#1f2a33",
    "xtick.color": "#1f2a33",
    "ytick.color": "#1f2a33",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "hatch.linewidth": 0.8,
    "path.simplify": False,
}

INK = "#1f2a33"
MUTED = "#66727d"
# name: (strong colour for edges and text, light colour for fills)
PALETTE = {
    "blue": ("#2d6a9f", "#dbe8f4"),     # token IDs, inputs
    "orange": ("#c8701e", "#fbe5cf"),   # queries, attention
    "purple": ("#6a4c9c", "#e7def3"),   # keys, positions
    "green": ("#2f8456", "#d9efe2"),    # values, outputs, trained
    "red": ("#b03a30", "#f6d7d3"),      # masked, ignored
    "grey": ("#7a848d", "#eceff1"),     # frozen, padding
    "teal": ("#1f7f86", "#d3eeef"),     # normalisation, misc
}
MONO = "DejaVu Sans Mono"


def strong(name):
    return PALETTE[name][0]


def light(name):
    return PALETTE[name][1]


def canvas(width, height):
    """A figure whose data coordinates are inches, origin bottom left."""
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes([0, 0, 1, 1], label="canvas")
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def box(ax, x, y, w, h, label="", color="blue", fontsize=11, weight="normal", fill=None,
        edge=None, family=None, lw=1.4, ls="-", text_color=None, hatch=None, rounding=0.07):
    """A rounded box with (x, y) its lower-left corner and a centred label."""
    patch = FancyBboxPatch((x, y), w, h, boxstyle=f"round,pad=0,rounding_size={rounding}",
                           facecolor=fill or light(color), edgecolor=edge or strong(color),
                           linewidth=lw, linestyle=ls, hatch=hatch)
    ax.add_patch(patch)
    if label:
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=fontsize,
                color=text_color or INK, weight=weight, family=family or STYLE["font.family"])
    return patch


def arrow(ax, start, end, color=INK, lw=1.5, ls="-", rad=0.0, style="-|>", scale=14):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=scale,
                                 color=color, linewidth=lw, linestyle=ls,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))


def write(ax, x, y, s, size=11, color=INK, ha="center", va="center", **kw):
    return ax.text(x, y, s, fontsize=size, color=color, ha=ha, va=va, **kw)


def blend(color, t):
    """White (t = 0) to `color` (t = 1)."""
    rgb = np.array(matplotlib.colors.to_rgb(color))
    return tuple(1 - t * (1 - rgb))


def matrix(ax, x, y, values, cell=0.42, color="blue", fmt="{:.2f}", fontsize=9,
           vmin=None, vmax=None, row_labels=None, col_labels=None, masked=None,
           title=None, title_size=10.5, text=True):
    """Draw a 2-D array as cells shaded by value; (x, y) is the top-left corner."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    lo = finite.min() if vmin is None else vmin
    hi = finite.max() if vmax is None else vmax
    rows, cols = values.shape
    for i in range(rows):
        for j in range(cols):
            cx, cy = x + j * cell, y - (i + 1) * cell
            v = values[i, j]
            is_masked = masked is not None and masked[i, j]
            if is_masked:
                face, label, tcolor = light("grey"), "", MUTED
            else:
                t = 0.08 + 0.72 * (v - lo) / (hi - lo) if hi > lo else 0.4
                face = blend(strong(color), t)
                label, tcolor = fmt.format(v), ("white" if t > 0.55 else INK)
            ax.add_patch(Rectangle((cx, cy), cell, cell, facecolor=face,
                                   edgecolor="white", linewidth=1.2,
                                   hatch="///" if is_masked else None))
            if is_masked and not np.isfinite(v):
                label, tcolor = "-inf", strong("red")
            if text and label:
                write(ax, cx + cell / 2, cy + cell / 2, label, size=fontsize, color=tcolor)
    ax.add_patch(Rectangle((x, y - rows * cell), cols * cell, rows * cell, fill=False,
                           edgecolor=strong(color), linewidth=1.2))
    if row_labels is not None:
        for i, lab in enumerate(row_labels):
            write(ax, x - 0.08, y - (i + 0.5) * cell, lab, size=fontsize + 0.5, ha="right")
    if col_labels is not None:
        for j, lab in enumerate(col_labels):
            write(ax, x + (j + 0.5) * cell, y + 0.08, lab, size=fontsize + 0.5, va="bottom",
                  rotation=45, ha="left", rotation_mode="anchor")
    if title:
        write(ax, x + cols * cell / 2, y + (0.75 if col_labels is not None else 0.22), title,
              size=title_size, weight="bold")
    return x + cols * cell, y - rows * cell


def shape_block(ax, x, y, rows, cols, unit, color, label=None, below=None, size=10.5):
    """A matrix drawn as a grid of unit cells (no numbers): shape at a glance.
    (x, y) is the top-left corner."""
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(Rectangle((x + j * unit, y - (i + 1) * unit), unit, unit,
                                   facecolor=light(color), edgecolor=strong(color),
                                   linewidth=0.8))
    if label:
        write(ax, x + cols * unit / 2, y + 0.2, label, size=size, weight="bold")
    if below:
        write(ax, x + cols * unit / 2, y - rows * unit - 0.2, below, size=size - 1,
              color=MUTED, family=MONO)
    return x + cols * unit, y - rows * unit


def show_token(text):
    """A token as printed in a figure: visible spaces, newlines as a symbol."""
    return text.replace("\n", "\u21b5").replace(" ", "\u2423")


# ----------------------------------------------------------------------------------------
# Shared inputs, computed with the course's code
# ----------------------------------------------------------------------------------------

_cache = {}


def tokenizer():
    if "tok" not in _cache:
        import tiktoken
        _cache["tok"] = tiktoken.get_encoding("gpt2")
    return _cache["tok"]


def data_file(name):
    """A course data file: data/NAME if present, else downloaded (honours LLM_COURSE_MIRROR)."""
    path = ROOT / "data" / name
    if not path.exists():
        from gpt_download import download_data_file
        path = Path(download_data_file(name, data_dir=str(ROOT / "data")))
    return path


def gpt_on_meta(cfg):
    import torch

    from previous_chapters import GPTModel
    with torch.device("meta"):
        return GPTModel(cfg)


# The six 3-d input vectors of Chapter 3 (Section 3.1 of the notebook), the book's.
CH03_TOKENS = ["Your", "journey", "starts", "with", "one", "step"]
CH03_INPUTS = [[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
               [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]]
CH03_SEED = 789  # the seed of SelfAttention_v2 in Section 3.3.2, whose weights Section 3.4 masks
# The toy next-word logits of Chapter 5, Section 5.6.1 ("Tomorrow will be ...").
CH05_WORDS = ["sunny", "rainy", "cloudy", "windy", "snowy", "foggy", "stormy", "humid"]
CH05_LOGITS = [4.2, 3.1, 3.6, 1.5, -0.8, 0.9, 1.2, 2.0]


# ----------------------------------------------------------------------------------------
# Chapter 2
# ----------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------
# Chapter 3
# ----------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------
# Chapter 4
# ----------------------------------------------------------------------------------------

def _param_count(module):
    return sum(p.numel() for p in module.parameters())


def draw_ch04_gpt_stack():
    from previous_chapters import GPT_CONFIG_124M
    cfg = GPT_CONFIG_124M
    model = gpt_on_meta(cfg)
    V, T, D, L = cfg["vocab_size"], cfg["context_length"], cfg["emb_dim"], cfg["n_layers"]
    block = _param_count(model.trf_blocks[0])
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
    write(ax, x - 0.25, 6.55, f"{_param_count(model.tok_emb):,}", size=9.5, ha="right",
          family=MONO, color=strong("blue"))
    write(ax, x - 0.25, 6.25, f"{_param_count(model.pos_emb):,}", size=9.5, ha="right",
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
          _param_count(model.final_norm))
    arrow(ax, (cx, 2.2), (cx, 1.9))
    layer(1.35, 0.5, f"output head: Linear({D} \u2192 {V:,})", "green",
          f"(batch, num_tokens, {V})", _param_count(model.out_head))
    arrow(ax, (cx, 1.35), (cx, 1.05))
    layer(0.55, 0.45, "logits: a score for every next token", "grey",
          "", fill="white")
    total = _param_count(model)
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
        total = _param_count(model)
        names.append(name.replace(" (", "\n("))
        untied.append(total)
        tied.append(total - _param_count(model.out_head))
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


# ----------------------------------------------------------------------------------------
# Chapter 5
# ----------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------
# Chapter 6
# ----------------------------------------------------------------------------------------

def draw_ch06_last_token():
    import torch

    from previous_chapters import GPT_CONFIG_124M, GPTModel, add_classification_head
    tok = tokenizer()
    ids = tok.encode("Do you have time")
    pieces = [show_token(tok.decode([i])) for i in ids]
    n = len(ids)
    cfg = {**GPT_CONFIG_124M, "context_length": 16, "emb_dim": 32, "n_heads": 2,
           "n_layers": 2, "drop_rate": 0.0}
    torch.manual_seed(123)
    model = GPTModel(cfg)
    add_classification_head(model, 2)
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor([ids]))[0].numpy()  # (num_tokens, 2)
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
          "can attend to", size=8.5, color=MUTED)
    # outputs
    x2 = 5.3
    write(ax, x2 + 0.9, top + 0.85, "model outputs (1, 4, 2)", size=10.5, weight="bold")
    write(ax, x2 + 0.45, top + 0.2, "ham", size=9, color=MUTED)
    write(ax, x2 + 1.35, top + 0.2, "spam", size=9, color=MUTED)
    for i in range(n):
        last = i == n - 1
        for j in range(2):
            box(ax, x2 + j * 0.9, top - (i + 1) * cell + 0.05, 0.85, cell - 0.1,
                f"{out[i, j]:+.2f}", "green" if last else "grey", fontsize=9.5, family=MONO,
                fill=None if last else "white", text_color=INK if last else MUTED)
        arrow(ax, (x1 + n * cell + 0.1, top - (i + 0.5) * cell), (x2 - 0.1, top - (i + 0.5) * cell),
              color=strong("green") if last else light("grey"), lw=1.6 if last else 1.0)
    write(ax, x2 + 1.95, top - (n - 0.5) * cell, "\u2190 outputs[:, -1, :]\n     the only row "
          "used", size=9.5, ha="left", color=strong("green"))
    write(ax, x2 + 1.95, top - 0.5 * cell, "\u2190 saw only \u201cDo\u201d", size=9.5,
          ha="left", color=MUTED)
    write(ax, 0.2, 0.5, "Only the last token has attended to the whole message, so its two "
          "scores decide the class.", size=10, ha="left")
    write(ax, 0.2, 0.2, "Scores of a small GPTModel with random weights (seed 123) after "
          "add_classification_head: untrained, so meaningless.", size=9.5, ha="left",
          color=MUTED)
    return fig


def draw_ch06_trainable():
    import torch

    from previous_chapters import add_classification_head, gpt2_config
    model = gpt_on_meta(gpt2_config("gpt2-small (124M)"))
    with torch.device("meta"):
        add_classification_head(model, 2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = _param_count(model)
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
         _param_count(model.tok_emb) + _param_count(model.pos_emb))
    yb = 4.85
    h = 0.32
    for k in [0, 1, None, n_layers - 2, n_layers - 1]:
        if k is None:
            write(ax, cx, yb - 0.15, "\u22ee", size=14, color=MUTED)
            yb -= 0.38
            continue
        part(yb - h, h, f"transformer block {k + 1}", k == n_layers - 1,
             _param_count(model.trf_blocks[k]))
        yb -= h + 0.08
    part(yb - 0.4, 0.4, "final LayerNorm", True, _param_count(model.final_norm))
    yb -= 0.48
    part(yb - 0.45, 0.45, "new out_head: Linear(768 \u2192 2)", True,
         _param_count(model.out_head))
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
    # A (in_dim x rank) and B (rank x out_dim)
    ay = 0.45
    box(ax, wx, ay, thin, side, "", "green", rounding=0.02)
    write(ax, wx + thin / 2, ay - 0.2, "A", size=12, weight="bold", color=strong("green"))
    box(ax, wx + 0.3, ay + side - thin, side, thin, "", "green", rounding=0.02)
    write(ax, wx + 0.4 + side, ay + side - thin / 2, "B", size=12, weight="bold",
          color=strong("green"), ha="left")
    tx = wx + 0.4
    write(ax, tx, ay + side - thin - 0.3, f"B: {r} \u00d7 768 = {n_b:,} numbers, starts at 0",
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
    px, py = 6.4, 4.1
    ax.add_patch(plt.Circle((px, py), 0.24, facecolor="white", edgecolor=INK, lw=1.5))
    write(ax, px, py, "+", size=15, weight="bold")
    arrow(ax, (wx + side + 0.05, py), (px - 0.26, py))
    arrow(ax, (wx + 0.3 + side + 0.4, ay + side - thin / 2), (px, py - 0.26), rad=0.35)
    write(ax, 5.95, 2.75, f"\u00d7 \u03b1 = {alpha}", size=10.5, ha="left")
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


# ----------------------------------------------------------------------------------------
# Chapter 7
# ----------------------------------------------------------------------------------------

def instruction_data():
    if "data" not in _cache:
        _cache["data"] = json.loads(data_file("instruction-data.json").read_text(encoding="utf-8"))
    return _cache["data"]


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


# ----------------------------------------------------------------------------------------
# The registry: where each figure goes, its caption and alt text
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    name: str
    notebook: str
    anchor: str      # id of the cell the figure follows
    caption: str     # one line: what to notice
    alt: str         # alt text for the image
    draw: object
    source: str = ""  # where the numbers come from, shown after the caption


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
    Figure("ch06_last_token", "ch06_classification.ipynb", "9b9c5b8c",
           "Under the causal mask only the last token sees the whole message, so the "
           "classifier reads its output row alone.",
           "A 4 by 4 causal mask for Do you have time, the last row highlighted; the model's "
           "four output rows of two class scores, of which only the last is used.",
           draw_ch06_last_token,
           "Scores of a small GPTModel with random weights (seed 123): untrained, so meaningless."),
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


# ----------------------------------------------------------------------------------------
# Drawing, saving and checking
# ----------------------------------------------------------------------------------------

def render(figure):
    """(svg bytes, png bytes) of one figure, drawn deterministically."""
    import torch
    with plt.rc_context():
        # matplotlib's own defaults plus STYLE, whatever a matplotlibrc or caller changed
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)
        torch.manual_seed(123)
        fig = figure.draw()
        svg, png = io.BytesIO(), io.BytesIO()
        tight = {"bbox_inches": drawn_extent(fig), "pad_inches": 0.12}
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None}, **tight)
        fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None}, **tight)
        plt.close(fig)
    return svg.getvalue(), shrink_png(png.getvalue())


def shrink_png(png):
    """The PNG as 256 indexed colours: a third of the size (the notebooks carry these bytes),
    with no visible change to flat-coloured diagrams."""
    from PIL import Image
    with Image.open(io.BytesIO(png)) as image:
        indexed = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                                                dither=Image.Dither.NONE)
    # the quantizer averages white to (254, 254, 254); keep the background pure white
    palette = indexed.getpalette()
    for i in range(0, len(palette), 3):
        if min(palette[i:i + 3]) >= 250:
            palette[i:i + 3] = [255, 255, 255]
    indexed.putpalette(palette)
    out = io.BytesIO()
    indexed.save(out, format="PNG", optimize=True)
    return out.getvalue()


def versions():
    """The libraries whose versions decide the exact bytes and pixels."""
    import PIL
    return {"matplotlib": matplotlib.__version__, "pillow": PIL.__version__}


def drawn_extent(fig):
    """The bounding box (inches) of what is drawn on a canvas figure, so that empty margins
    are cut off; "tight" for ordinary plots."""
    axes = [a for a in fig.axes if a.get_label() == "canvas"]
    if not axes:
        return "tight"
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox
    ax = axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in ax.get_children()
             if a.get_visible() and a is not ax.patch
             and isinstance(a, (Text, Patch, Line2D)) and not isinstance(a, Spine)
             and not (isinstance(a, Text) and not a.get_text())]
    box_px = Bbox.union(boxes)
    return box_px.transformed(fig.dpi_scale_trans.inverted()).padded(0.12)


def svg_texts(svg):
    """The strings a figure shows (svg.fonttype 'none' keeps them as <text> elements)."""
    found = re.findall(rb"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", t.decode())).split()) for t in found]


def png_pixels(png):
    from PIL import Image
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def blocks(pixels, size=4):
    """Grey levels averaged over size x size blocks: a shift by a pixel or a new
    anti-aliasing barely changes them, a moved or recoloured shape does."""
    grey = pixels.astype(float).mean(axis=2)
    h, w = (grey.shape[0] // size) * size, (grey.shape[1] // size) * size
    return grey[:h, :w].reshape(h // size, size, w // size, size).mean(axis=(1, 3))


def compare(name, new, old, same_version):
    """Problems (a list of strings) between a freshly drawn figure and the committed one."""
    (new_svg, new_png), (old_svg, old_png) = new, old
    problems = []
    if svg_texts(new_svg) != svg_texts(old_svg):
        problems.append(f"{name}: its text differs")
    a, b = png_pixels(new_png), png_pixels(old_png)
    if same_version:
        if new_svg != old_svg:
            problems.append(f"{name}.svg differs")
        if a.shape != b.shape or not np.array_equal(a, b):
            problems.append(f"{name}.png differs")
        return problems
    # Other library versions: text may be measured a pixel wider, so allow a few pixels of
    # size difference, then compare block averages.
    if (abs(a.shape[0] - b.shape[0]) > MAX_SIZE_CHANGE * b.shape[0]
            or abs(a.shape[1] - b.shape[1]) > MAX_SIZE_CHANGE * b.shape[1]):
        problems.append(f"{name}.png: size {b.shape[1]}x{b.shape[0]}, the script draws "
                        f"{a.shape[1]}x{a.shape[0]}")
        return problems
    best = None
    for dy in range(-2, 3):  # the cut-off margins may move the drawing by a pixel or two
        for dx in range(-2, 3):
            a2 = a[max(dy, 0):, max(dx, 0):]
            b2 = b[max(-dy, 0):, max(-dx, 0):]
            h, w = min(a2.shape[0], b2.shape[0]), min(a2.shape[1], b2.shape[1])
            diff = np.abs(blocks(a2[:h, :w]) - blocks(b2[:h, :w]))
            rms = float(np.sqrt((diff ** 2).mean()))
            if best is None or rms < best[0]:
                best = (rms, float((diff > BLOCK_CHANGE).mean()))
    rms, changed = best
    if rms > RMS_TOLERANCE or changed > CHANGED_FRACTION:
        problems.append(f"{name}.png differs (rms {rms:.1f}, {100 * changed:.2f}% of "
                        "4x4 blocks changed a lot)")
    return problems


def draw_all(names=None):
    chosen = [f for f in FIGURES if names is None or f.name in names]
    return {f.name: render(f) for f in chosen}


def manifest_entry(figure):
    return {"notebook": figure.notebook, "after_cell": figure.anchor,
            "caption": figure.caption, "source": figure.source, "alt": figure.alt}


def write_figures(drawn):
    FIGURES_DIR.mkdir(exist_ok=True)
    for name, (svg, png) in drawn.items():
        (FIGURES_DIR / f"{name}.svg").write_bytes(svg)
        (FIGURES_DIR / f"{name}.png").write_bytes(png)
    manifest = {
        "drawn_with": versions(),
        "figures": {f.name: manifest_entry(f) for f in FIGURES},
    }
    (FIGURES_DIR / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")


def check_figures(drawn):
    """Problems between `drawn` and the files in figures/ (empty list: up to date)."""
    problems = []
    manifest_path = FIGURES_DIR / MANIFEST
    if not manifest_path.exists():
        return [f"{manifest_path.relative_to(ROOT)} is missing"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    same_version = manifest.get("drawn_with") == versions()
    expected = {f.name for f in FIGURES}
    if set(manifest.get("figures", {})) != expected:
        problems.append("figures/manifest.json lists other figures than the script draws")
    for f in FIGURES:
        entry = manifest.get("figures", {}).get(f.name)
        if entry and entry != manifest_entry(f):
            problems.append(f"{f.name}: caption, alt text or place in figures/manifest.json "
                            "differs")
    for name, new in drawn.items():
        paths = [FIGURES_DIR / f"{name}.svg", FIGURES_DIR / f"{name}.png"]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            problems.append(f"missing: {', '.join('figures/' + m for m in missing)}")
            continue
        problems += compare(name, new, (paths[0].read_bytes(), paths[1].read_bytes()),
                            same_version)
    stray = sorted(p.name for p in FIGURES_DIR.glob("*.*")
                   if p.name != MANIFEST and p.stem not in expected)
    if stray:
        problems.append(f"files in figures/ that the script does not draw: {', '.join(stray)}")
    return problems


# ----------------------------------------------------------------------------------------
# Embedding in the notebooks
# ----------------------------------------------------------------------------------------

def figure_cell(figure, png):
    data = base64.b64encode(png).decode("ascii")
    alt = figure.alt.replace("[", "(").replace("]", ")")
    caption = f"*Figure: {figure.caption}*" + (f" {figure.source}" if figure.source else "")
    source = f"![{alt}](data:image/png;base64,{data})\n\n{caption}"
    lines = source.splitlines(keepends=True)
    # keys in the order nbformat writes them (sorted)
    return {"cell_type": "markdown",
            "id": "fig-" + figure.name.replace("_", "-"),
            "metadata": {"figure": figure.name},
            "source": lines}


def load_notebook(path):
    return json.loads(path.read_text(encoding="utf-8"))


def dump_notebook(nb):
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def embed(notebook_name, pngs):
    """The notebook's text with every figure cell of this notebook placed and up to date."""
    path = ROOT / notebook_name
    nb = load_notebook(path)
    cells = [c for c in nb["cells"] if not (c["cell_type"] == "markdown"
                                            and "figure" in c.get("metadata", {}))]
    known = {f.name for f in FIGURES}
    for c in nb["cells"]:
        name = c.get("metadata", {}).get("figure") if c["cell_type"] == "markdown" else None
        if name is not None and name not in known:
            raise SystemExit(f"{notebook_name}: a figure cell refers to {name!r}, which "
                             "tools/draw_figures.py does not draw")
    for figure in (f for f in FIGURES if f.notebook == notebook_name):
        positions = [i for i, c in enumerate(cells) if c.get("id") == figure.anchor]
        if not positions:
            raise SystemExit(f"figure {figure.name}: anchor cell id {figure.anchor!r} is "
                             f"missing from {notebook_name}; update its anchor in FIGURES")
        cells.insert(positions[0] + 1, figure_cell(figure, pngs[figure.name]))
    nb["cells"] = cells
    return path, dump_notebook(nb)


def notebook_pngs():
    """The PNG of every figure as committed in figures/."""
    pngs = {}
    for f in FIGURES:
        path = FIGURES_DIR / f"{f.name}.png"
        if not path.exists():
            raise SystemExit(f"figures/{f.name}.png is missing: run python tools/draw_figures.py")
        pngs[f.name] = path.read_bytes()
    return pngs


def embed_all(check_only=False):
    pngs = notebook_pngs()
    stale = []
    for notebook_name in sorted({f.notebook for f in FIGURES}):
        path, text = embed(notebook_name, pngs)
        if path.read_text(encoding="utf-8") != text:
            if check_only:
                stale.append(notebook_name)
            else:
                path.write_text(text, encoding="utf-8")
                print(f"embedded figures in {notebook_name}")
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only check: fail if figures/ (or, with --embed, a notebook) "
                             "is out of date")
    parser.add_argument("--embed", action="store_true",
                        help="insert or refresh the figure cells in the chapter notebooks "
                             "(from the PNGs in figures/)")
    parser.add_argument("--only", nargs="*", help="draw only these figures (names)")
    args = parser.parse_args(argv)
    if args.embed:
        stale = embed_all(check_only=args.check)
        if stale:
            print(f"figure cells out of date in {', '.join(stale)}: run "
                  "`python tools/draw_figures.py --embed`", file=sys.stderr)
            return 1
        return 0
    drawn = draw_all(args.only)
    if args.check:
        problems = check_figures(drawn)
        if problems:
            for p in problems:
                print(p, file=sys.stderr)
            print(f"figures/ is out of date with tools/draw_figures.py: {FIX}", file=sys.stderr)
            return 1
        print(f"figures/ is up to date ({len(drawn)} figures)")
        return 0
    if args.only:
        FIGURES_DIR.mkdir(exist_ok=True)
        for name, (svg, png) in drawn.items():
            (FIGURES_DIR / f"{name}.svg").write_bytes(svg)
            (FIGURES_DIR / f"{name}.png").write_bytes(png)
    else:
        for old in FIGURES_DIR.glob("*.*") if FIGURES_DIR.exists() else []:
            if old.name != MANIFEST and old.stem not in drawn:
                old.unlink()
        write_figures(drawn)
    print(f"drew {len(drawn)} figures into figures/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
