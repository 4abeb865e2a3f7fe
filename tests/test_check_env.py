"""tools/check_env.py: it runs, names the device, and says in one line what is missing."""

import re
import subprocess
import sys
from collections import namedtuple
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import psutil

from tools import check_env

ROOT = Path(__file__).resolve().parent.parent


def test_it_runs_and_prints_the_device_and_every_requirement():
    result = subprocess.run([sys.executable, "tools/check_env.py"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert re.search(r"^Device: (cpu|cuda|mps)", result.stdout, re.M), result.stdout
    for name, _ in check_env.requirements(ROOT / "requirements.txt"):
        assert re.search(rf"^  {re.escape(name)} ", result.stdout, re.M), name
    # exit 1 exactly when a problem line says what to fix
    assert (result.returncode == 1) == ("problem:" in result.stdout), result.stdout


def test_a_missing_package_is_one_problem_line(tmp_path, capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("torch>=2.4\nno-such-package-for-this-course>=1.0  # not on any index\n")
    assert check_env.main(["--requirements", str(requirements), "--run-size", "quick"]) == 1
    out = capsys.readouterr().out
    assert "problem: no-such-package-for-this-course is not installed" in out
    assert "problem: torch" not in out


def test_an_old_or_absent_version_is_reported():
    def version(name):
        if name == "absent":
            raise PackageNotFoundError(name)
        return {"torch": "2.3.1+cpu", "tiktoken": "0.7.0"}[name]

    problems = check_env.check_packages([("torch", "2.4"), ("tiktoken", "0.7"), ("absent", None)],
                                        version=version)
    assert len(problems) == 2
    assert problems[0].startswith("torch 2.3.1+cpu is older than the 2.4")
    assert problems[1].startswith("absent is not installed")


def test_too_little_memory_points_at_a_smaller_run_size(monkeypatch, capsys):
    memory = namedtuple("memory", "total available")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory(4 * 2**30, 3 * 2**30))
    monkeypatch.setenv("LLM_COURSE_DEVICE", "cpu")
    assert check_env.main(["--run-size", "laptop"]) == 1
    out = capsys.readouterr().out
    assert "Device: cpu  (LLM_COURSE_DEVICE chose it)" in out
    assert re.search(r"problem: 4\.0 GiB of memory is too little for the 'laptop' run size.*"
                     r"LLM_COURSE_RUN=quick", out), out
