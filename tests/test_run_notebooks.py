"""tools/run_notebooks.py: runs a notebook in a fresh kernel at the chosen size and stores its outputs."""

from functools import partial
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import run_notebooks

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "run_notebooks.py"

pytestmark = pytest.mark.slow


def run_tool(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_outputs_are_written_back_with_the_run_size_and_progress(tmp_path, monkeypatch):
    path = tmp_path / "demo.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo"),
                nbformat.v4.new_code_cell("from previous_chapters import run_size\nprint(run_size())"),
                nbformat.v4.new_code_cell("6 * 7")]
    nbformat.write(nb, path)
    monkeypatch.setenv("LLM_COURSE_QUICK", "1")  # the tool's --mode wins over CI's switch

    result = run_tool(path, "--mode", "laptop")

    assert result.returncode == 0, result.stderr
    ran = nbformat.read(path, as_version=4)
    assert ran.cells[1].outputs[0]["text"] == "laptop\n"
    assert ran.cells[2].outputs[0]["data"]["text/plain"] == "42"
    assert "| laptop" in result.stdout  # printed lines are echoed as they come
    assert "cell 2/2" in result.stdout and "demo.ipynb: done in" in result.stdout


def test_a_failing_cell_leaves_the_notebook_unwritten(tmp_path):
    path = tmp_path / "broken.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(nb, path)
    before = path.read_text()

    result = run_tool(path, "--mode", "quick")

    assert result.returncode == 1
    assert "FAILED" in result.stderr and "ZeroDivisionError" in result.stderr
    assert path.read_text() == before


def test_a_missing_notebook_is_one_line_and_exit_2(tmp_path):
    result = run_tool(tmp_path / "nope.ipynb", "--mode", "quick")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such notebook" in lines[0] and str(tmp_path / "nope.ipynb") in lines[0]


def test_progress_bars_are_stored_as_the_screen_showed_them():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("loop()")])
    stream = partial(nbformat.v4.new_output, "stream")
    nb.cells[0].outputs = [  # what the kernel sends: one output per redraw or print
        stream(name="stderr", text="\rloss: 1/3"), stream(name="stderr", text="\rloss: 2/3"),
        stream(name="stderr", text="\r         \r"),  # an evaluation bar erases itself
        stream(name="stdout", text="train loss 1.0\n"),
        stream(name="stderr", text="\repoch 1: 1/2"), stream(name="stderr", text="\repoch 1: 2/2\n"),
        stream(name="stdout", text="The"), stream(name="stdout", text=" answer\n"),  # streamed tokens
        stream(name="stderr", text="\repoch 2:  50%|█████     | 1/2 [00:03<00:03]"),
        stream(name="stderr", text="\repoch 2: 100%|██████████| 2/2 [00:06<00:00]\n"),  # a finished bar
    ]
    outputs = run_notebooks.keep_final_screen(nb).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [
        ("stdout", "train loss 1.0\n"), ("stderr", "epoch 1: 2/2\n"), ("stdout", "The answer\n")]


def test_printed_lines_between_finished_bars_are_stored_as_one_output():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train()")])
    stream = partial(nbformat.v4.new_output, "stream")
    nb.cells[0].outputs = [
        stream(name="stdout", text="Epoch 1: loss 2.0\n"),
        stream(name="stderr", text="\repoch 1: 100%|██████████| 2/2 [00:06<00:00]\n"),
        stream(name="stdout", text="Epoch 2: loss"), stream(name="stdout", text=" 1.0\n"),  # one print, two flushes
        stream(name="stderr", text="\repoch 2: 100%|██████████| 2/2 [00:06<00:00]\n"),
    ]
    outputs = run_notebooks.keep_final_screen(nb).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [("stdout", "Epoch 1: loss 2.0\nEpoch 2: loss 1.0\n")]
