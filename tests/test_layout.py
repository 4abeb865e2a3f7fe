"""The modules a chapter runs with are listed for hand-outs (tools/handout.py) and for
`pip install -e .` (pyproject.toml): the two lists and the repository's files agree."""

import re
from pathlib import Path

from tools.handout import COURSE_MODULES

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_installs_the_modules_a_chapter_runs_with():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    listed = re.search(r"py-modules = \[(.*?)\]", text, re.S).group(1)
    assert sorted(re.findall(r'"(\w+)"', listed)) == sorted(Path(m).stem for m in COURSE_MODULES)


def test_every_top_level_module_is_handed_out():
    assert {p.name for p in ROOT.glob("*.py")} - {"conftest.py"} == set(COURSE_MODULES)
