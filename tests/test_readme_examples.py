"""README's command-line examples, run in a fresh copy of the course (no models/, no data).

Only README's "Command-line tools" block is run here: the quick start's tools/check_env.py
has tests/test_check_env.py, and CONTRIBUTING.md's commands (export, mirror, refresh,
figures) take minutes and have tests of their own; tests/test_markdown_links.py checks that
every script those pages name exists and that every link and anchor resolves.

Each must end in a result (exit 0, output on stdout) or in one line saying what to do
(exit 2), never in a traceback. Downloads come from LLM_COURSE_MIRROR when it is set.
Sizes are overridden (--tokens, --steps, a tiny model) so the runs take seconds.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.handout import COURSE_MODULES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FRESH_COPY = ["scripts", *COURSE_MODULES, "data/README.md"]
# Appended to an example so it runs quickly; argparse keeps the last value of an option.
SHORTER = {
    "scripts/generate.py": ["--tokens", "3", "--device", "cpu"],
    "scripts/chat.py": ["--tokens", "3", "--device", "cpu"],
    "scripts/classify.py": ["--device", "cpu"],
    "scripts/pretrain.py": ["--steps", "1", "--n-layers", "1", "--emb-dim", "16", "--n-heads", "2",
                            "--context-length", "16", "--batch-size", "2", "--eval-every", "0",
                            "--device", "cpu"],
    "scripts/bench_bpe.py": ["--runs", "1"],
}
NOT_RUN = {  # what a test can't run in a few seconds, and why
    "torchrun": "starts several processes (tests/test_pretrain_ddp.py runs pretrain.py under torchrun)",
    "scripts/bench.py": "a benchmark of minutes that needs transformers",
    "scripts/bench_chapters.py": "a benchmark of many minutes (tests/test_bench_chapters.py runs it tiny)",
    "scripts/bench_dtypes.py": "a benchmark of many minutes (tests/test_bench_dtypes.py runs it tiny)",
}


def readme_examples():
    """The command lines of README's block under "## Command-line tools"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command-line tools", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def example_id(words):
    return " ".join(words[:2])


EXAMPLES = readme_examples()


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory):
    """The course as a fresh clone has it: code, no downloads, no checkpoints."""
    root = tmp_path_factory.mktemp("fresh")
    for name in FRESH_COPY:
        source, target = ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, target)
    return root


def test_readme_has_an_example_of_every_script():
    scripts = {word for words in EXAMPLES for word in words if word.startswith("scripts/")}
    assert scripts == {"scripts/generate.py", "scripts/classify.py", "scripts/chat.py",
                       "scripts/pretrain.py", "scripts/bench.py", "scripts/bench_chapters.py",
                       "scripts/bench_dtypes.py", "scripts/bench_bpe.py"}


@pytest.mark.needs_data
@pytest.mark.parametrize("words", EXAMPLES, ids=[example_id(w) for w in EXAMPLES])
def test_example_gives_a_result_or_one_line(words, fresh_copy):
    reason = next((why for key, why in NOT_RUN.items() if key in words), None)
    if reason:
        pytest.skip(f"not run here: {reason}")
    assert words[0] == "python", f"README example does not start with python: {words}"
    script = words[1]
    result = subprocess.run([sys.executable, *words[1:], *SHORTER[script]], cwd=fresh_copy,
                            capture_output=True, text=True, timeout=180,
                            env={**os.environ, "OMP_NUM_THREADS": "1",
                                 "PYTHONPATH": str(fresh_copy)})  # as `pip install -e .` there
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 2:  # something is missing: one line says what makes it
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and ("section" in lines[0] or "--" in lines[0]), result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip(), result.stderr
