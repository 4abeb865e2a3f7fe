"""Put together what learners get for one chapter, in one flat folder.

    python tools/handout.py ch03 handout-ch03/ [--solutions]

The folder gets the chapter notebook, its exercise notebook, previous_chapters.py,
gpt_download.py and its support modules, the chapters' support modules (safe_checkpoints.py,
judge_client.py), exercise_checks.py and requirements.txt (and, with --solutions, the
solution notebook as chNN_solutions.ipynb). Everything runs from that folder: the notebooks
find the modules beside them. Exit status 2 for bad arguments.
"""

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The modules a chapter runs with, beside it: previous_chapters.py, gpt_download.py and the
# support modules they import, and exercise_checks.py. pyproject.toml installs the same ones.
COURSE_MODULES = ["previous_chapters.py", "gpt_download.py", "download_engine.py", "gpt2_weights.py",
                  "tf_checkpoint.py", "safe_checkpoints.py", "judge_client.py", "exercise_checks.py"]
MODULES = [*COURSE_MODULES, "requirements.txt"]


def handout_files(chapter, solutions=False):
    """[(source path, name in the handout folder)] for one chapter."""
    chapter_notebook = next(ROOT.glob(f"{chapter}_*.ipynb"))
    files = [(chapter_notebook, chapter_notebook.name),
             (ROOT / "exercises" / f"{chapter}_exercises.ipynb", f"{chapter}_exercises.ipynb")]
    files += [(ROOT / name, name) for name in MODULES]
    if solutions:
        files.append((ROOT / "solutions" / f"{chapter}_exercises.ipynb", f"{chapter}_solutions.ipynb"))
    return files


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"handout.py: error: {message}\n")


def main(argv=None):
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", help="e.g. ch03")
    parser.add_argument("destination", help="folder to create (or fill)")
    parser.add_argument("--solutions", action="store_true", help="add the solution notebook")
    args = parser.parse_args(argv)
    known = sorted(p.name.split("_")[0] for p in (ROOT / "exercises").glob("ch*_exercises.ipynb"))
    if args.chapter not in known:
        parser.error(f"unknown chapter {args.chapter!r}; choose one of {', '.join(known)}")
    destination = Path(args.destination)
    if destination.exists() and not destination.is_dir():
        parser.error(f"{destination} exists and is not a folder")
    destination.mkdir(parents=True, exist_ok=True)
    for source, name in handout_files(args.chapter, args.solutions):
        shutil.copy(source, destination / name)
        print(f"{destination / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
