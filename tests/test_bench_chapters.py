"""scripts/bench_chapters.py: its table on tiny settings, its agreement check, bad input."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_chapters.py"


def run_script(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_chapters", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.needs_data
def test_tiny_run_prints_one_agreeing_row_per_item(tmp_path):
    result = run_script("--tiny", "--ch06-messages", "40", "--ch06-epochs", "2", "--ch7-steps", "2",
                        "--ch7-answers", "10", "--ch7-tokens", "6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for name in ("ch05", "ch06", "ch07", "ch07gen"):  # progress: a line as each item starts
        assert any(line.startswith(f"[{name}] running") for line in lines)
    header = lines.index(next(line for line in lines if line.startswith("item")))
    assert header == len(lines) - 5  # the header, then one row per item
    assert "book-style s" in lines[header] and "speed-up" in lines[header]
    for line, name in zip(lines[header + 1:], ("ch05", "ch06", "ch07", "ch07")):
        assert line.startswith(name)
        assert " yes (max diff " in line


def test_only_selects_items(bench):
    assert bench.parse_args(["--only", "ch06,ch07gen"]).only == ["ch06", "ch07gen"]
    assert bench.parse_args([]).only is None  # every item


def test_disagreement_is_reported(bench):
    assert bench.max_difference([[1.0, 2.0]], [[1.0, 2.5]]) == 0.5
    assert bench.max_difference([[1.0, 2.0]], [[1.0]]) == float("inf")
    assert not bench.Result("x", 1.0, 1.0, max_diff=2e-5, tolerance=1e-5).agree
    assert bench.Result("x", 1.0, 1.0, max_diff=0.0, tolerance=1e-5).agree


@pytest.mark.parametrize("args", [["--only", "ch99"], ["--ch7-steps", "0"],
                                  ["--ch06-messages", "many"], ["--ch7-size", "7B"]])
def test_bad_input_is_one_line_and_exit_2(args, tmp_path):
    result = run_script(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
