"""Grade learners' exercise notebooks: one row per student, one column per exercise.

    python tools/grade.py SUBMISSIONS --chapter ch03 [--timeout 300] [--jobs 2] [--out DIR]

SUBMISSIONS is a folder holding one notebook per student: either STUDENT.ipynb, or a
subfolder STUDENT/ with the notebook inside (named chNN_exercises.ipynb, or the only
.ipynb there). Every notebook runs top to bottom in a fresh Python kernel, in a
temporary folder of its own that holds a copy of the notebook, previous_chapters.py with
the modules it imports (gpt_download.py and its support modules, safe_checkpoints.py,
judge_client.py) and exercise_checks.py, with a time limit per notebook. Before it runs,
its check cells are replaced by the original ones from exercises/ (a check cell that
is missing is added at the end), so every exercise is checked the same way.

Each exercise gets "pass", "fail" (the check rejected the answer; the detail is its
hint) or "error" (the check cell raised, the kernel died, or time ran out; the detail
is the first line of the error). Results go to DIR/grades_chNN.csv (student, exercise,
status, detail) and DIR/grades_chNN.txt (a readable table, also printed); DIR defaults
to SUBMISSIONS. Exit status: 0 when every notebook was graded, 2 for bad arguments.
"""

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.handout import COURSE_MODULES

ROOT = Path(__file__).resolve().parent.parent
SUPPORT_FILES = COURSE_MODULES  # what the notebook imports, copied beside it
RESULT_MIME = "application/vnd.llm-course.check+json"  # as in exercise_checks.py
CURRENT_ENV_KERNEL = "course-current-env"
STARTUP_GRACE_S = 60  # time to start the kernel, on top of the per-notebook limit


def chapters():
    return sorted(path.name.split("_")[0] for path in (ROOT / "exercises").glob("ch*_exercises.ipynb"))


def canonical_checks(chapter):
    """exercise id -> source of its check cell, from exercises/<chapter>_exercises.ipynb."""
    import nbformat

    notebook = nbformat.read(ROOT / "exercises" / f"{chapter}_exercises.ipynb", as_version=4)
    return {cell.metadata["exercise"]: cell.source for cell in notebook.cells
            if "check" in cell.metadata.get("tags", [])}


def find_submissions(folder, chapter):
    """[(student, notebook path or None, problem or None)], sorted by student."""
    found = []
    for entry in sorted(Path(folder).iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append((entry.stem, entry, None))
        elif entry.is_dir() and not entry.name.startswith("."):
            notebooks = sorted(p for p in entry.glob("*.ipynb") if p.is_file())
            named = [p for p in notebooks if p.name == f"{chapter}_exercises.ipynb"]
            if named or len(notebooks) == 1:
                found.append((entry.name, (named or notebooks)[0], None))
            elif notebooks:
                found.append((entry.name, None, f"{len(notebooks)} notebooks in {entry.name}/ and none "
                                                f"named {chapter}_exercises.ipynb"))
            else:
                found.append((entry.name, None, f"no notebook in {entry.name}/"))
    return found


def first_line(text):
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def prepare_notebook(source_path, checks, destination):
    """Copy a submission to destination with the original check cells, outputs cleared.

    An exercise's check cell is the first cell tagged "check" for it or, when its metadata
    got lost, the first cell that calls its check function; it gets the original source.
    No other cell counts as a check cell. Missing check cells are added at the end."""
    import nbformat

    notebook = nbformat.read(source_path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    chosen = {}
    for cell in code_cells:
        exercise = cell.metadata.get("exercise")
        if "check" in cell.metadata.get("tags", []) and exercise in checks:
            chosen.setdefault(exercise, cell)
    for cell in code_cells:
        for exercise in checks:
            if exercise not in chosen and f"check_{exercise}(" in cell.source and cell not in chosen.values():
                chosen[exercise] = cell
    for cell in code_cells:
        cell.metadata["tags"] = [tag for tag in cell.metadata.get("tags", []) if tag != "check"]
        cell.outputs, cell.execution_count = [], None
    for exercise, cell in chosen.items():
        cell.source = checks[exercise]
        cell.metadata["tags"].append("check")
        cell.metadata["exercise"] = exercise
    for exercise, source in checks.items():
        if exercise not in chosen:
            notebook.cells.append(nbformat.v4.new_code_cell(
                source, metadata={"tags": ["check"], "exercise": exercise}))
    nbformat.write(notebook, destination)


def read_verdict(cell):
    """(status, detail) from the outputs of an executed check cell."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return "error", first_line(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
        result = output.get("data", {}).get(RESULT_MIME)
        if result is not None:
            if isinstance(result, str):
                result = json.loads(result)
            return ("pass", "") if result.get("passed") else ("fail", first_line(result.get("message", "")))
    return "error", "the check cell showed no verdict"


def current_env_kernel():
    """NotebookClient options for a kernel that runs with this Python, whatever kernels are
    installed elsewhere (as nbval's --nbval-current-env does)."""
    import ipykernel.kernelspec
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from traitlets import default

    class CurrentEnvKernelSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name == CURRENT_ENV_KERNEL:
                return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                              **ipykernel.kernelspec.get_kernel_dict())
            return super().get_kernel_spec(kernel_name)

    class CurrentEnvKernelManager(AsyncKernelManager):  # nbclient needs the async one
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return CurrentEnvKernelSpecs(data_dir=self.data_dir)

    return {"kernel_manager_class": CurrentEnvKernelManager, "kernel_name": CURRENT_ENV_KERNEL}


def run_one(notebook_path, workdir, results_path, timeout):
    """Run in a child process: execute one notebook and write its verdicts as JSON."""
    import nbformat
    from nbclient import NotebookClient

    results = {"verdicts": {}, "notebook_error": None}

    def save():
        Path(results_path).write_text(json.dumps(results))

    def on_cell_executed(cell, **_):
        if "check" in cell.metadata.get("tags", []):
            results["verdicts"][cell.metadata["exercise"]] = read_verdict(cell)
            save()

    deadline = []

    def time_left(cell):
        # One limit for the whole notebook, counted from its first cell (after the kernel started).
        if not deadline:
            deadline.append(time.monotonic() + timeout)
        return max(1, math.ceil(deadline[0] - time.monotonic()))

    notebook = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(notebook, **current_env_kernel(), timeout_func=time_left, allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}},
                            on_cell_executed=on_cell_executed)
    try:
        client.execute()
    except Exception as error:  # a cell timed out, the kernel died, ...
        name = type(error).__name__
        if name == "CellTimeoutError":
            results["notebook_error"] = f"the notebook ran past the time limit ({timeout:g} s)"
        elif name == "DeadKernelError":
            results["notebook_error"] = "the notebook's kernel died (crashed or exited)"
        else:
            results["notebook_error"] = first_line(f"{name}: {error}")
    save()


def kill_tree(pid):
    import psutil

    try:
        parent = psutil.Process(pid)
        processes = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=10)


def grade_notebook(notebook_path, chapter, timeout=300.0, checks=None):
    """{exercise id: (status, detail)} for one notebook, run in a temporary copy."""
    checks = checks or canonical_checks(chapter)
    # The notebook runs in workdir; the runner's own files are kept in another folder.
    run_dir, workdir = Path(tempfile.mkdtemp(prefix="grade-")), Path(tempfile.mkdtemp(prefix="grade-work-"))
    results_path = run_dir / "results.json"
    outcome = {}
    try:
        for name in SUPPORT_FILES:
            shutil.copy(ROOT / name, workdir / name)
        try:
            prepare_notebook(notebook_path, checks, workdir / "submission.ipynb")
        except Exception as error:
            problem = first_line(f"the notebook could not be read: {type(error).__name__}: {error}")
            return {exercise: ("error", problem) for exercise in checks}
        # The child finds this module as tools.grade; the notebook's kernel, started in
        # workdir, imports the copies there first.
        python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": python_path}
        code = ("import sys; from tools import grade; "
                "grade.run_one(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))")
        stderr_file = open(run_dir / "stderr.txt", "w")
        child = subprocess.Popen(
            [sys.executable, "-c", code, str(workdir / "submission.ipynb"),
             str(workdir), str(results_path), str(timeout)],
            cwd=run_dir, env=env, stdout=subprocess.DEVNULL, stderr=stderr_file,
            start_new_session=True)
        timed_out = False
        try:
            child.wait(timeout=timeout + STARTUP_GRACE_S)
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_tree(child.pid)  # the kernel too, should it outlive the run
        child.wait()
        stderr_file.close()
        try:
            results = json.loads(results_path.read_text())
        except (OSError, ValueError):
            results = {"verdicts": {}, "notebook_error": None}
        problem = results.get("notebook_error")
        if timed_out:
            problem = f"the notebook ran past the time limit ({timeout:g} s)"
        elif problem is None and child.returncode != 0:
            lines = (run_dir / "stderr.txt").read_text(errors="replace").strip().splitlines()
            problem = f"the grading process failed: {lines[-1] if lines else child.returncode}"
        for exercise in checks:
            verdict = results["verdicts"].get(exercise)
            outcome[exercise] = tuple(verdict) if verdict else ("error", problem or "the check did not run")
        return outcome
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def write_reports(rows, exercises, chapter, out_dir, timeout):
    """rows: [(student, {exercise: (status, detail)})]. Returns the summary text."""
    csv_path, text_path = out_dir / f"grades_{chapter}.csv", out_dir / f"grades_{chapter}.txt"
    with open(csv_path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "exercise", "status", "detail"])
        for student, outcome in rows:
            for exercise in exercises:
                writer.writerow([student, exercise, *outcome[exercise]])

    short = [exercise.split("_")[1] for exercise in exercises]
    width = max([len("student")] + [len(student) for student, _ in rows])
    lines = [f"Grades for {chapter}: {len(rows)} notebook(s), {len(exercises)} exercises, "
             f"time limit {timeout:g} s per notebook", "",
             "  ".join(["student".ljust(width)] + [name.ljust(5) for name in short] + ["passed"])]
    for student, outcome in rows:
        statuses = [outcome[exercise][0] for exercise in exercises]
        passed = statuses.count("pass")
        lines.append("  ".join([student.ljust(width)] + [s.ljust(5) for s in statuses]
                               + [f"{passed}/{len(exercises)}"]))
    problems = [(student, exercise, *outcome[exercise]) for student, outcome in rows
                for exercise in exercises if outcome[exercise][0] != "pass"]
    if problems:
        lines += ["", "Not passed (first line of the hint or error):"]
        lines += [f"  {student} {exercise} {status}: {detail}" for student, exercise, status, detail in problems]
    lines += ["", f"Written: {csv_path}, {text_path}"]
    text = "\n".join(lines) + "\n"
    text_path.write_text(text)
    return text


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"grade.py: error: {message}\n")


def main(argv=None):
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", help="folder with one notebook (or subfolder) per student")
    parser.add_argument("--chapter", required=True, help="chapter of the exercises, e.g. ch03")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per notebook (default 300)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at the same time (default 1)")
    parser.add_argument("--out", help="folder for grades_chNN.csv and .txt (default: SUBMISSIONS)")
    args = parser.parse_args(argv)

    known = chapters()
    if args.chapter not in known:
        parser.error(f"unknown chapter {args.chapter!r}; choose one of {', '.join(known)}")
    folder = Path(args.submissions)
    if not folder.is_dir():
        parser.error(f"no such folder: {folder}")
    if args.timeout <= 0 or args.jobs < 1:
        parser.error("--timeout must be positive and --jobs at least 1")
    out_dir = Path(args.out) if args.out else folder
    if not out_dir.is_dir():
        parser.error(f"no such folder for --out: {out_dir}")
    submissions = find_submissions(folder, args.chapter)
    if not submissions:
        parser.error(f"no notebooks (STUDENT.ipynb or STUDENT/*.ipynb) in {folder}")

    checks = canonical_checks(args.chapter)
    exercises = list(checks)

    def grade(submission):
        student, path, problem = submission
        start = time.monotonic()
        if path is None:
            outcome = {exercise: ("error", problem) for exercise in exercises}
        else:
            outcome = grade_notebook(path, args.chapter, args.timeout, checks)
        passed = sum(status == "pass" for status, _ in outcome.values())
        print(f"graded {student}: {passed}/{len(exercises)} passed ({time.monotonic() - start:.0f} s)",
              flush=True)
        return student, outcome

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(grade, submissions))
    print()
    print(write_reports(rows, exercises, args.chapter, out_dir, args.timeout), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
