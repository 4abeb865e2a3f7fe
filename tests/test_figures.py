"""The diagrams: figures/ matches what tools/draw_figures.py draws, and every notebook
carries each figure once, right after its anchor cell, as the committed PNG."""

import base64
import json
import re

import pytest

from tools import draw_figures

ROOT = draw_figures.ROOT
FIX = "run `python tools/draw_figures.py` and `python tools/draw_figures.py --embed`"
DATA_URI = re.compile(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


@pytest.fixture(scope="module")
def drawn():
    # Graphviz diagrams are checked on their DOT text, so the tests need no `dot`
    return draw_figures.draw_all(render_diagrams=False)


def figure_cells(notebook_name):
    nb = json.loads((ROOT / notebook_name).read_text(encoding="utf-8"))
    return nb["cells"], [(i, c) for i, c in enumerate(nb["cells"])
                         if c["cell_type"] == "markdown" and "figure" in c.get("metadata", {})]


@pytest.mark.needs_data
def test_figures_dir_matches_the_drawing_script(drawn):
    problems = draw_figures.check_figures(drawn)
    assert not problems, "\n".join(problems) + f"\nfigures/ is out of date: {FIX}"


def test_every_figure_has_a_one_line_caption_and_alt_text():
    names = [f.name for f in draw_figures.FIGURES]
    assert len(names) == len(set(names))
    for f in draw_figures.FIGURES:
        assert f.caption.strip() and "\n" not in f.caption, f.name
        assert f.alt.strip() and "\n" not in f.alt and "]" not in f.alt, f.name
        assert "\n" not in f.source, f.name
        assert (ROOT / f.notebook).exists(), f.name


def test_each_chapter_teaches_with_figures():
    notebooks = {f.notebook.split("_")[0] for f in draw_figures.FIGURES}
    assert {"ch02", "ch03", "ch04", "ch05", "ch06", "ch07"} <= notebooks  # appendices may add more


@pytest.mark.parametrize("notebook_name", sorted({f.notebook for f in draw_figures.FIGURES}))
def test_notebook_figures_exist_are_current_and_follow_their_anchor(notebook_name):
    cells, found = figure_cells(notebook_name)
    by_name = {f.name: f for f in draw_figures.FIGURES}
    seen = []
    for index, cell in found:
        name = cell["metadata"]["figure"]
        assert name in by_name, f"{notebook_name} shows figure {name!r}, which is not drawn"
        png_path = ROOT / "figures" / f"{name}.png"
        assert png_path.exists(), f"{notebook_name} shows figures/{name}.png, which is missing"
        match = DATA_URI.search("".join(cell["source"]))
        assert match, f"{name}: the cell holds no inline PNG"
        assert base64.b64decode(match.group(2)) == png_path.read_bytes(), (
            f"{name}: the image in {notebook_name} is not the committed PNG: {FIX}")
        assert match.group(1).strip(), f"{name}: no alt text"
        assert index > 0 and cells[index - 1].get("id") == by_name[name].anchor, (
            f"{name} is not right after its anchor cell {by_name[name].anchor!r}: {FIX}")
        seen.append(name)
    expected = [f.name for f in draw_figures.FIGURES if f.notebook == notebook_name]
    assert sorted(seen) == sorted(expected), (
        f"{notebook_name} should show {sorted(expected)}, shows {sorted(seen)}: {FIX}")


def test_embedding_is_idempotent_and_up_to_date():
    assert draw_figures.embed_all(check_only=True) == [], f"figure cells are stale: {FIX}"


def test_embedding_leaves_every_other_cell_alone(tmp_path, monkeypatch):
    name = "ch03_attention.ipynb"
    cells, _ = figure_cells(name)
    others = [c for c in cells if "figure" not in c.get("metadata", {})]
    # a copy without figure cells gets them back, and nothing else changes
    nb = json.loads((ROOT / name).read_text(encoding="utf-8"))
    nb["cells"] = others
    (tmp_path / name).write_text(draw_figures.dump_notebook(nb), encoding="utf-8")
    monkeypatch.setattr(draw_figures, "ROOT", tmp_path)
    _, text = draw_figures.embed(name, draw_figures.notebook_pngs())
    assert text == (ROOT / name).read_text(encoding="utf-8")
    again = json.loads(text)
    assert [c for c in again["cells"] if "figure" not in c.get("metadata", {})] == others


def test_a_missing_anchor_is_reported_with_the_figure_name(tmp_path, monkeypatch):
    name = "ch02_text_data.ipynb"
    nb = json.loads((ROOT / name).read_text(encoding="utf-8"))
    anchor = next(f.anchor for f in draw_figures.FIGURES if f.notebook == name)
    nb["cells"] = [c for c in nb["cells"] if c.get("id") != anchor]
    (tmp_path / name).write_text(json.dumps(nb), encoding="utf-8")
    monkeypatch.setattr(draw_figures, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match=f"ch02_.*{anchor}"):
        draw_figures.embed(name, draw_figures.notebook_pngs())


@pytest.mark.needs_data
def test_the_check_catches_a_changed_label(drawn):
    name = "ch05_decoding"
    svg, png = drawn[name]["svg"], drawn[name]["png"]
    changed = svg.replace(b"top-k = 3", b"top-k = 4", 1)
    assert changed != svg
    for same_version in (True, False):
        assert draw_figures.compare(name, (changed, png), (svg, png), same_version)
    assert not draw_figures.compare(name, (svg, png), (svg, png), False)


def diagram_names():
    return [f.name for f in draw_figures.FIGURES
            if "dot" in draw_figures.render(f, render_diagrams=False)]


@pytest.mark.needs_data
def test_the_check_catches_a_changed_diagram_and_a_stale_render(drawn, tmp_path, monkeypatch):
    name = diagram_names()[0]
    manifest = draw_figures.read_manifest()
    for kind in ("dot", "svg", "png"):
        (tmp_path / f"{name}.{kind}").write_bytes((ROOT / "figures" / f"{name}.{kind}").read_bytes())
    monkeypatch.setattr(draw_figures, "FIGURES_DIR", tmp_path)
    files = {"dot": drawn[name]["dot"]}
    assert draw_figures.check_diagram(name, files, manifest) == []
    changed = {"dot": files["dot"].replace(b"label=", b"xlabel=", 1)}
    assert "differs" in draw_figures.check_diagram(name, changed, manifest)[0]
    # the DOT text was edited (and committed) but the SVG and PNG were not rendered again
    (tmp_path / f"{name}.dot").write_bytes(changed["dot"])
    assert "not rendered" in draw_figures.check_diagram(name, changed, manifest)[0]
