"""How much code a learner reads in each chapter notebook, next to the book's own notebooks.

    python tools/notebook_stats.py

For each chapter and appendix notebook it prints
- code lines: every line of every code cell, blank lines and comments included (a cell's
  source split at its newlines), which is how the book's figures below were counted;
- raise: the `raise` statements in those cells (as Python parses them: a word "raise" in a
  comment or docstring does not count);
- longest cell: the line count of the longest code cell;
and, for chapters 5-7, the same three numbers for the book's notebook of that chapter.
"""

import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [path.name for pattern in ("ch0*.ipynb", "appendix_*.ipynb") for path in sorted(ROOT.glob(pattern))]
# The book's notebooks (code lines, raise statements, longest code cell), as counted in issue 22.
BOOK = {"ch05": (653, 1, 65), "ch06": (581, 0, 86), "ch07": (644, 1, 73)}


def code_cells(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            source = cell["source"]
            yield "".join(source) if isinstance(source, list) else source


def count_raises(source):
    """The raise statements in a cell; lines of IPython magic (%, !) are left out first."""
    python = "\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!")))
    return sum(isinstance(node, ast.Raise) for node in ast.walk(ast.parse(python)))


def notebook_stats(path):
    """(code lines, raise statements, lines of the longest code cell) of one notebook."""
    line_counts = [len(source.split("\n")) for source in code_cells(path)]
    raises = sum(count_raises(source) for source in code_cells(path))
    return sum(line_counts), raises, max(line_counts, default=0)


def main():
    header = f"{'notebook':28}{'code lines':>12}{'raise':>7}{'longest cell':>14}   book: lines / raise / longest"
    print(header)
    for name in NOTEBOOKS:
        lines, raises, longest = notebook_stats(ROOT / name)
        book = BOOK.get(name.split("_")[0])
        book_text = " / ".join(map(str, book)) if book else "-"
        print(f"{name:28}{lines:>12}{raises:>7}{longest:>14}   {book_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
