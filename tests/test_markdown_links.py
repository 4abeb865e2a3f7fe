"""The course's pages point at things that exist: files, headings, scripts, CI's test command."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "CONTRIBUTING.md", "BENCHMARKS.md", "INSTRUCTORS.md"]
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def prose(path):
    """The page without its fenced code blocks (a `# comment` there is no heading)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def anchor(heading):
    """GitHub's id for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    return {anchor(h) for h in re.findall(r"^#{1,6} (.+)$", prose(path), re.M)}


def links(path):
    """Relative link targets of a page: (file part, anchor part or None)."""
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(path)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        found.append((file_part, fragment or None))
    return found


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_point_at_files_and_headings(page):
    path = ROOT / page
    assert path.is_file(), f"{page} is missing"
    broken = []
    for file_part, fragment in links(path):
        target = (path.parent / file_part) if file_part else path
        if not target.exists():
            broken.append(f"{file_part}: no such file")
        elif fragment and target.suffix == ".md" and fragment not in anchors(target):
            broken.append(f"{file_part or page}#{fragment}: no such heading")
    assert not broken, f"{page}: " + "; ".join(broken)


@pytest.mark.parametrize("page", ["README.md", "CONTRIBUTING.md", "INSTRUCTORS.md"])
def test_every_script_a_command_names_exists(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    scripts = set(re.findall(r"\bpython3? ((?:scripts|tools)/[\w/]+\.py)", text))
    missing = sorted(name for name in scripts if not (ROOT / name).is_file())
    assert not missing, f"{page} runs scripts that do not exist: {missing}"


def test_ci_finds_the_test_command_where_it_looks():
    """.ci/run takes the second line after the marker: the fence, then the command."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    marker = [i for i, line in enumerate(lines) if line.strip() == "<!-- test-command -->"]
    assert len(marker) == 1, "README.md needs exactly one <!-- test-command --> line"
    fence, command = lines[marker[0] + 1], lines[marker[0] + 2]
    assert fence == "```bash" and command.strip() and not command.startswith("```")
    assert "pytest" in command


def test_anchor_follows_githubs_rule():
    assert anchor("The mirror setting (CI and offline classrooms)") == \
        "the-mirror-setting-ci-and-offline-classrooms"
    assert anchor("PyTorch on your platform") == "pytorch-on-your-platform"
