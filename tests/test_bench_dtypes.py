"""scripts/bench_dtypes.py: its table on tiny settings, and bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_dtypes.py"


def run_script(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.needs_data
def test_tiny_run_prints_one_row_per_item_with_the_choice(tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_COURSE_DTYPE")  # let choose_dtype measure, as a learner's run does
    result = run_script("--tiny", "--steps", "2", "--batches", "1", "--ch7-tokens", "6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    choice = next(line for line in lines if line.startswith("device "))
    assert choice.split()[:4] == ["device", "cpu:", "choose_dtype", "picks"]
    assert choice.split()[4] in ("float32", "bfloat16")
    header = lines.index(next(line for line in lines if line.startswith("item")))
    assert header == len(lines) - 5  # the header, then one row per item
    for line, name in zip(lines[header + 1:], ("ch05", "ch06", "ch07", "ch07")):
        assert line.startswith(name)
    assert "losses within" in lines[header + 1] and "same predictions" in lines[header + 2]
    assert "answers differ" in lines[header + 4]


@pytest.mark.parametrize("args", [["--only", "ch99"], ["--steps", "0"], ["--ch7-size", "7B"]])
def test_bad_input_is_one_line_and_exit_2(args, tmp_path):
    result = run_script(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
