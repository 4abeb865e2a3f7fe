"""What every figure of the course shares: one style, the inputs computed with the course's
code, the `Figure` record, and the helpers for both kinds of drawing.

* Box-and-arrow diagrams (pipelines, loops, model stacks) are Graphviz: a function returns
  DOT text (https://graphviz.org/doc/info/lang.html) made with `digraph`, which adds the
  shared fonts and colours; `fill("orange")` colours a node. Graphviz lays them out.
* Data-driven figures (matrices, token strips, bars) are matplotlib on a `canvas` whose
  coordinates are inches, with `box`, `arrow`, `write` and `matrix`.

Each chapter's figures live in tools/figures/chNN.py, with their `FIGURES` list (where each
goes in its notebook, caption, alt text); tools/draw_figures.py renders, checks and embeds.
"""

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class Figure:
    name: str
    notebook: str
    anchor: str      # id of the cell the figure follows
    caption: str     # one line: what to notice
    alt: str         # alt text for the image
    draw: object     # returns a matplotlib figure, or DOT text for a Graphviz diagram
    source: str = ""  # where the numbers come from, shown after the caption


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

cache = {}


def tokenizer():
    if "tok" not in cache:
        import tiktoken
        cache["tok"] = tiktoken.get_encoding("gpt2")
    return cache["tok"]


def data_file(name):
    """A course data file: data/NAME if present, else downloaded (honours LLM_COURSE_MIRROR)."""
    path = ROOT / "data" / name
    if not path.exists():
        from gpt_download import download_data_file
        path = Path(download_data_file(name, data_dir=str(ROOT / "data")))
    return path


def param_count(module):
    return sum(p.numel() for p in module.parameters())


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
# Graphviz diagrams in the same style
# ----------------------------------------------------------------------------------------

FONT = STYLE["font.family"]


def fill(color, text=INK):
    """DOT attributes that colour a node like the matplotlib boxes of the same name."""
    return f'color="{strong(color)}", fillcolor="{light(color)}", fontcolor="{text}"'


def digraph(body, rankdir="LR", **graph):
    """A DOT digraph with the course's fonts, colours and spacing around `body`.
    Keyword arguments set more graph attributes (ranksep=0.5, ...)."""
    extra = "".join(f", {k}={v}" for k, v in graph.items())
    return (
        "digraph {\n"
        f'  graph [rankdir={rankdir}, fontname="{FONT}", fontsize=11, bgcolor=white, '
        f"pad=0.12, nodesep=0.25, ranksep=0.35, dpi=100{extra}];\n"
        f'  node [shape=box, style="rounded,filled", fontname="{FONT}", fontsize=11, '
        f'penwidth=1.3, margin="0.12,0.06", {fill("blue")}];\n'
        f'  edge [color="{INK}", penwidth=1.2, arrowsize=0.7, fontname="{FONT}", '
        f'fontsize=10, fontcolor="{MUTED}"];\n'
        f"{body.strip(chr(10))}\n"
        "}\n"
    )


def stored_output(notebook, cell_id):
    """The text a code cell printed in the notebook's stored run, so that a figure shows the
    numbers the reader sees beside it (and the check fails when a re-run changes them)."""
    import json
    nb = json.loads((ROOT / notebook).read_text(encoding="utf-8"))
    cell = next((c for c in nb["cells"] if c.get("id") == cell_id), None)
    if cell is None:
        raise SystemExit(f"{notebook} has no cell with id {cell_id!r}")
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")
