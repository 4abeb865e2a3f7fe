"""Write the exercise and solution notebooks from tools/exercise_text.py.

    python tools/make_exercises.py            # write exercises/ and solutions/ (solutions unexecuted)
    python tools/make_exercises.py --execute  # ... and run the solutions, storing their outputs
    python tools/make_exercises.py --check    # exit 1 if a notebook differs from exercise_text.py

The exercise notebook of a chapter has, per exercise, a task (markdown), an answer cell
that starts with "# your code here" and a check cell that calls exercise_checks. The
solution notebook is the same with the answers written in. Cells carry their role in
their metadata: tags "setup", "answer" or "check", and "exercise": the exercise id.
"""

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from exercise_text import CHAPTERS  # noqa: E402

ANSWER_MARK = "# your code here"

SETUP_SOURCE = """\
# Make previous_chapters.py and exercise_checks.py importable: they sit beside this notebook
# when it is handed out on its own, and one folder up in the course repository.
import sys
from pathlib import Path

for folder in [Path.cwd(), Path.cwd().parent]:
    if (folder / "exercise_checks.py").exists() and (folder / "previous_chapters.py").exists():
        sys.path.insert(0, str(folder))
        break
else:
    print("Put previous_chapters.py and exercise_checks.py in the folder of this notebook.")"""

INTRO = """\
# {title}

Exercises on the ideas of `{notebook}`. For each exercise, write your
answer in the cell that starts with `{mark}` (replace the `...` or `None`), run it, and
then run the check cell below it. The check tries your code on inputs of its own and
tells you whether it works, with a hint when it does not. Add cells of your own wherever
you like, but keep the check cells as they are.

**What you need beside this notebook:** `previous_chapters.py` (the course's code) and
`exercise_checks.py` (the checks), in the same folder as the notebook or one folder up
(as in the course repository, where this notebook is in `exercises/`). The exercises
use small models with random weights and download nothing (tiktoken fetches GPT-2's
vocabulary once, as in the chapters); every cell runs in seconds on a CPU."""

SOLUTION_INTRO = """\
# {title}: solutions

One way to solve each exercise of `exercises/{chapter}_exercises.ipynb`; other answers
pass the checks too. The outputs were stored from a run of this notebook on a CPU
(`python tools/make_exercises.py --execute`)."""


def check_source(exercise):
    name = f"check_{exercise['id']}"
    return f"from exercise_checks import {name}\n\n{name}({', '.join(exercise['args'])})"


def build(chapter, solution):
    spec = CHAPTERS[chapter]
    cells = []

    def add(kind, source, cell_id, **metadata):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = make(source, id=cell_id)
        cell.metadata.update(metadata)
        cells.append(cell)

    intro = (SOLUTION_INTRO if solution else INTRO).format(
        title=spec["title"], notebook=spec["notebook"], chapter=chapter, mark=ANSWER_MARK)
    add("markdown", intro, f"{chapter}-intro")
    add("code", SETUP_SOURCE, f"{chapter}-setup", tags=["setup"])
    add("code", spec["imports"], f"{chapter}-imports", tags=["setup"])
    for exercise in spec["exercises"]:
        exercise_id = exercise["id"]
        number = f"{int(chapter[2:])}.{int(exercise_id.split('_ex')[1])}"
        add("markdown", f"## Exercise {number}: {exercise['heading']}\n\n{exercise['task']}",
            f"{exercise_id}-task")
        answer = exercise["solution"] if solution else f"{ANSWER_MARK}\n{exercise['stub']}"
        add("code", answer, f"{exercise_id}-answer", tags=["answer"], exercise=exercise_id)
        add("code", check_source(exercise), f"{exercise_id}-check", tags=["check"], exercise=exercise_id)

    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata.update({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    return notebook


def notebook_path(folder, chapter):
    return ROOT / folder / f"{chapter}_exercises.ipynb"


def same_cells(a, b):
    def key(notebook):
        return [(cell.cell_type, cell.source, cell.metadata.get("tags"), cell.metadata.get("exercise"))
                for cell in notebook.cells]
    return key(a) == key(b)


def execute(notebook, folder, timeout=600):
    from nbclient import NotebookClient

    from grade import current_env_kernel

    NotebookClient(notebook, **current_env_kernel(), timeout=timeout, coalesce_streams=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare the notebooks with exercise_text.py")
    parser.add_argument("--execute", action="store_true", help="run the solution notebooks and store their outputs")
    parser.add_argument("--chapter", action="append", choices=sorted(CHAPTERS), help="only this chapter")
    args = parser.parse_args(argv)
    chapters = args.chapter or sorted(CHAPTERS)

    if args.check:
        stale = []
        for chapter in chapters:
            for folder, solution in [("exercises", False), ("solutions", True)]:
                path = notebook_path(folder, chapter)
                if not path.exists() or not same_cells(nbformat.read(path, as_version=4), build(chapter, solution)):
                    stale.append(str(path.relative_to(ROOT)))
        if stale:
            print(f"out of date: {', '.join(stale)}; run python tools/make_exercises.py --execute")
            return 1
        print("exercise and solution notebooks match tools/exercise_text.py")
        return 0

    for chapter in chapters:
        for folder, solution in [("exercises", False), ("solutions", True)]:
            path = notebook_path(folder, chapter)
            path.parent.mkdir(exist_ok=True)
            notebook = build(chapter, solution)
            if solution and args.execute:
                print(f"running {path.relative_to(ROOT)}", flush=True)
                notebook = execute(notebook, path.parent)
            elif solution and path.exists():
                old = nbformat.read(path, as_version=4)
                if same_cells(old, notebook):
                    continue  # keep the stored outputs
            nbformat.write(notebook, path)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
