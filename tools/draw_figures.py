"""Draw the course's figures, check them, and embed them in the chapter notebooks.

    python tools/draw_figures.py            # draw every figure into figures/ (SVG + PNG)
    python tools/draw_figures.py --check    # fail if figures/ differs from what this draws
    python tools/draw_figures.py --embed    # insert/refresh one markdown cell per figure
    python tools/draw_figures.py --embed --check   # fail if a notebook's figure is stale

What is drawn where. Each chapter's figures are in tools/figures/chNN.py, in one style
(tools/figures/style.py: DejaVu Sans, one palette): box-and-arrow diagrams as Graphviz DOT
text, rendered by `dot` (Debian/Ubuntu: `apt install graphviz`; macOS: `brew install
graphviz`), data figures with matplotlib. Where a figure shows numbers, they are computed
with the course's own code (`previous_chapters`, tiktoken, the course data files), and the
caption says what they are.

Where figures go. Every `Figure` names its notebook and the `id` of the cell it follows (an
anchor). `--embed` writes a markdown cell right after the anchor holding the
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

How --check works for a Graphviz diagram: it compares the DOT text the script writes now with
figures/NAME.dot, and that file's SHA-256 with the one figures/manifest.json recorded when the
SVG and PNG were rendered from it. So a changed label, number or arrow fails, a stale render
fails, and the check needs no `dot` (CI has none) and no pixel comparison.

How --check stays deterministic and survives matplotlib updates (the matplotlib figures). CI installs the newest
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
"""


import argparse
import base64
import hashlib
import html
import io
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.spines import Spine  # noqa: E402

from tools.figures import appendix_f, appendix_g, ch02, ch03, ch04, ch05, ch06, ch07  # noqa: E402
from tools.figures.style import STYLE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

FIGURES = [f for chapter in (ch02, ch03, ch04, ch05, ch06, ch07, appendix_f, appendix_g)
           for f in chapter.FIGURES]
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
# Drawing, saving and checking
# ----------------------------------------------------------------------------------------

def render(figure, render_diagrams=True):
    """The files of one figure, drawn deterministically: {"svg", "png"} for a matplotlib
    figure; {"dot"} for a Graphviz diagram, with its "svg" and "png" if render_diagrams."""
    import torch
    with plt.rc_context():
        # matplotlib's own defaults plus STYLE, whatever a matplotlibrc or caller changed
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)
        torch.manual_seed(123)
        fig = figure.draw()
        if isinstance(fig, str):  # DOT text
            return {"dot": fig.encode(), **(render_dot(fig) if render_diagrams else {})}
        svg, png = io.BytesIO(), io.BytesIO()
        tight = {"bbox_inches": drawn_extent(fig), "pad_inches": 0.12}
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None}, **tight)
        fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None}, **tight)
        plt.close(fig)
    return {"svg": svg.getvalue(), "png": shrink_png(png.getvalue())}


def render_dot(dot):
    """SVG and PNG of DOT text, laid out and drawn by Graphviz's `dot`."""
    try:
        import graphviz
        source = graphviz.Source(dot)
        return {"svg": source.pipe(format="svg"), "png": shrink_png(source.pipe(format="png"))}
    except ImportError:
        raise SystemExit("drawing the diagrams needs the graphviz package: "
                         "pip install -r requirements-test.txt") from None
    except graphviz.ExecutableNotFound:
        raise SystemExit("drawing the diagrams needs Graphviz's `dot`: apt install graphviz "
                         "(Debian, Ubuntu) or brew install graphviz (macOS)") from None


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


def draw_all(names=None, render_diagrams=True):
    chosen = [f for f in FIGURES if names is None or f.name in names]
    return {f.name: render(f, render_diagrams) for f in chosen}


def manifest_entry(figure):
    return {"notebook": figure.notebook, "after_cell": figure.anchor,
            "caption": figure.caption, "source": figure.source, "alt": figure.alt}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_manifest():
    path = FIGURES_DIR / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_figures(drawn):
    """Write the drawn files into figures/ and refresh the manifest. Figures not in `drawn`
    (a partial draw) keep their files and their recorded versions."""
    FIGURES_DIR.mkdir(exist_ok=True)
    for name, files in drawn.items():
        for kind, data in files.items():
            (FIGURES_DIR / f"{name}.{kind}").write_bytes(data)
    old = read_manifest() or {}
    everything = set(drawn) == {f.name for f in FIGURES}
    rendered_from = {} if everything else dict(old.get("rendered_from", {}))
    rendered_from.update({name: sha256(files["dot"]) for name, files in drawn.items()
                          if "dot" in files})
    manifest = {
        "drawn_with": versions() if everything else old.get("drawn_with", versions()),
        "figures": {f.name: manifest_entry(f) for f in FIGURES},
        # the SHA-256 of the DOT text each diagram's SVG and PNG were rendered from
        "rendered_from": dict(sorted(rendered_from.items())),
    }
    (FIGURES_DIR / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")


def check_diagram(name, files, manifest):
    """Problems of one Graphviz diagram: its DOT text, and the render made from it."""
    dot_path = FIGURES_DIR / f"{name}.dot"
    missing = [f"figures/{name}.{k}" for k in ("dot", "svg", "png")
               if not (FIGURES_DIR / f"{name}.{k}").exists()]
    if missing:
        return [f"missing: {', '.join(missing)}"]
    committed = dot_path.read_bytes()
    if committed != files["dot"]:
        return [f"{name}.dot differs from the DOT text the script writes"]
    if manifest.get("rendered_from", {}).get(name) != sha256(committed):
        return [f"{name}: the SVG and PNG were not rendered from figures/{name}.dot"]
    return []


def check_figures(drawn):
    """Problems between `drawn` and the files in figures/ (empty list: up to date)."""
    manifest = read_manifest()
    if manifest is None:
        return [f"{(FIGURES_DIR / MANIFEST).relative_to(ROOT)} is missing"]
    problems = []
    same_version = manifest.get("drawn_with") == versions()
    expected = {f.name for f in FIGURES}
    if set(manifest.get("figures", {})) != expected:
        problems.append("figures/manifest.json lists other figures than the script draws")
    for f in FIGURES:
        entry = manifest.get("figures", {}).get(f.name)
        if entry and entry != manifest_entry(f):
            problems.append(f"{f.name}: caption, alt text or place in figures/manifest.json "
                            "differs")
    for name, files in drawn.items():
        if "dot" in files:
            problems += check_diagram(name, files, manifest)
            continue
        paths = [FIGURES_DIR / f"{name}.svg", FIGURES_DIR / f"{name}.png"]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            problems.append(f"missing: {', '.join('figures/' + m for m in missing)}")
            continue
        problems += compare(name, (files["svg"], files["png"]),
                            (paths[0].read_bytes(), paths[1].read_bytes()), same_version)
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
    drawn = draw_all(args.only, render_diagrams=not args.check)
    if args.check:
        problems = check_figures(drawn)
        if problems:
            for p in problems:
                print(p, file=sys.stderr)
            print(f"figures/ is out of date with tools/figures/: {FIX}", file=sys.stderr)
            return 1
        print(f"figures/ is up to date ({len(drawn)} figures)")
        return 0
    if not args.only:
        for old in FIGURES_DIR.glob("*.*") if FIGURES_DIR.exists() else []:
            if old.name != MANIFEST and old.stem not in drawn:
                old.unlink()
    write_figures(drawn)
    print(f"drew {len(drawn)} figures into figures/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
