"""Grade learners' exercise notebooks: points per exercise, a class table, feedback per student.

    python tools/grade.py SUBMISSIONS --chapter ch03 [--timeout 300] [--jobs 2] [--out DIR] [--seed N]

SUBMISSIONS is a folder holding one notebook per student: either STUDENT.ipynb, or a
subfolder STUDENT/ with the notebook inside (named chNN_exercises.ipynb, or the only
.ipynb there).

The grader decides, not the learner's notebook. For each notebook a fresh Python
process runs the notebook's own code cells in order (with IPython, so magics work), in a
temporary folder with copies of the course modules, and skips its check cells: what
they print, and what the notebook displays, is never read. Where the original check
cell of an exercise stands (or at the end, if it was deleted), the process loads fresh
copies of exercise_checks.py and of the private checks (tools/private_checks.py, never
handed out) from the course folder, and scores the answers the check cell names: the
public parts of the check on their own inputs, then the private parts on inputs drawn
at random from the run's seed. Patching the check module, faking a verdict or reading
the public checks' inputs changes nothing.

Every part of a check is worth one point. An exercise is "pass" (every part),
"fail" (some part rejected the answer; the detail is its hint) or "error" (the
learner's code raised while a check ran it, or the check never ran: time limit,
crash). Written to DIR (default SUBMISSIONS):
  grades_chNN.csv      student, exercise, status, points, max_points, detail
  grades_chNN.txt      the class table with per-exercise pass rates (also printed)
  feedback_chNN/STUDENT.md  per student: points, each part's hint, the learner's own
                       failing line on an error, and the answers to the reflective questions
  reflections_chNN.md  every student's answers to the reflective questions, by question
Exit status: 0 when every notebook was graded, 2 for bad arguments.
"""

import argparse
import csv
import json
import os
import random
import re
import secrets
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
PRIVATE_CHECKS = ROOT / "tools" / "private_checks.py"
STARTUP_GRACE_S = 60  # time to start the process and import torch, on top of the per-notebook limit


def chapters():
    return sorted(path.name.split("_")[0] for path in (ROOT / "exercises").glob("ch*_exercises.ipynb"))


def canonical_checks(chapter):
    """exercise id -> source of its check cell, from exercises/<chapter>_exercises.ipynb."""
    import nbformat

    notebook = nbformat.read(ROOT / "exercises" / f"{chapter}_exercises.ipynb", as_version=4)
    return {cell.metadata["exercise"]: cell.source for cell in notebook.cells
            if "check" in cell.metadata.get("tags", [])}


def check_arguments(exercise_id, source):
    """The names a check cell passes to check_<exercise_id>, in order."""
    match = re.search(rf"check_{exercise_id}\(([^)]*)\)", source)
    return [name.strip() for name in match.group(1).split(",") if name.strip()] if match else []


def max_points(chapter):
    """exercise id -> points available: the public parts and the private ones."""
    import exercise_checks as ec

    private = load_module(PRIVATE_CHECKS, "private_checks")
    return {exercise_id: len(ec.EXERCISES[exercise_id].parts) + len(private.PRIVATE_PARTS.get(exercise_id, []))
            for exercise_id in ec.chapter_exercises(chapter)}


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


def grading_plan(source_path, checks):
    """What the grading process does with a submission: {"steps": [...], "reflections": {...}}.

    A step is {"cell": number, "source": ..., "exercise": id or None} for a code cell of the
    notebook, or {"check": exercise id, "arguments": [names]} where an exercise's check cell
    stands: the first cell tagged "check" for it or, when its metadata got lost, the first
    cell that calls its check function. Checks whose cell is missing come at the end.
    Reflections: exercise id -> the text of the notebook's reflection cells for it."""
    import nbformat

    notebook = nbformat.read(source_path, as_version=4)
    code_cells = [(number, cell) for number, cell in enumerate(notebook.cells, 1) if cell.cell_type == "code"]
    chosen = {}
    for number, cell in code_cells:
        exercise = cell.metadata.get("exercise")
        if "check" in cell.metadata.get("tags", []) and exercise in checks:
            chosen.setdefault(exercise, number)
    for number, cell in code_cells:
        for exercise in checks:
            if exercise not in chosen and f"check_{exercise}(" in cell.source and number not in chosen.values():
                chosen[exercise] = number
    check_at = {number: exercise for exercise, number in chosen.items()}
    steps = []
    for number, cell in code_cells:
        if number in check_at:
            exercise = check_at[number]
            steps.append({"check": exercise, "arguments": check_arguments(exercise, checks[exercise])})
        else:
            steps.append({"cell": number, "source": cell.source, "exercise": cell.metadata.get("exercise")})
    steps += [{"check": exercise, "arguments": check_arguments(exercise, source)}
              for exercise, source in checks.items() if exercise not in chosen]
    reflections = {}
    for cell in notebook.cells:
        if "reflection" in cell.metadata.get("tags", []):
            reflections.setdefault(cell.metadata.get("exercise", "other"), []).append(cell.source.strip())
    return {"steps": steps, "reflections": {key: "\n\n".join(texts) for key, texts in reflections.items()}}


def load_module(path, name):
    """A fresh module object from a file, whatever sys.modules holds under that name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh_checks():
    """New copies of exercise_checks (also put in sys.modules) and of the private checks."""
    ec = load_module(ROOT / "exercise_checks.py", "exercise_checks")
    sys.modules["exercise_checks"] = ec  # the private checks import this one
    return ec, load_module(PRIVATE_CHECKS, "private_checks")


def run_cell(shell, step, ec):
    """Run one code cell of the notebook; None, or its error (message and the failing line)."""
    import linecache

    filename = f"<cell {step['cell']}>"
    source = shell.transform_cell(step["source"])
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        exec(compile(source, filename, "exec"), shell.user_ns)
    except (Exception, SystemExit) as error:
        return {"cell": step["cell"], "exercise": step["exercise"], "error": ec.first_line(error),
                "line": ec.learner_line(error)}
    return None


def score_step(shell, step, seed):
    ec, private = fresh_checks()
    answer = [shell.user_ns.get(name) for name in step["arguments"]]
    rng = random.Random(f"{seed}-{step['check']}")
    card = ec.score(step["check"], *answer, extra_parts=private.extra_parts(step["check"], rng))
    return card.as_dict()


def run_answers(plan_path, results_path, seed):
    """Run in a fresh process, in the submission's folder: run its cells, score each exercise.

    Each result is appended to results_path as one JSON line, as soon as it is known."""
    from IPython.core.interactiveshell import InteractiveShell

    plan = json.loads(Path(plan_path).read_text())
    results = open(results_path, "a")
    shell = InteractiveShell.instance()
    ec = load_module(ROOT / "exercise_checks.py", "exercise_checks")  # loaded before the notebook's code runs
    for step in plan["steps"]:
        result = score_step(shell, step, seed) if "check" in step else run_cell(shell, step, ec)
        if result is not None:
            results.write(json.dumps(result) + "\n")
            results.flush()
    results.close()


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


def unscored(points, problem):
    return {"status": "error", "points": 0, "max_points": points, "detail": problem, "parts": []}


def outcome_of(card):
    """status, points and detail of one exercise from its scorecard."""
    failed = [p for p in card["parts"] if not p["passed"]]
    status = "pass" if not failed else "error" if any(p["line"] for p in failed) else "fail"
    return {"status": status, "points": card["points"], "max_points": card["max_points"],
            "detail": first_line(failed[0]["hint"]) if failed else "", "parts": card["parts"]}


def run_submission(notebook_path, checks, timeout, seed, workdir, run_dir):
    """(results read back, problem or None) of one grading process."""
    plan_path, results_path = run_dir / "plan.json", run_dir / "results.jsonl"
    plan_path.write_text(json.dumps(grading_plan(notebook_path, checks)))
    results_path.write_text("")
    # The child finds this module as tools.grade; the notebook, run in workdir, imports the copies there.
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": python_path}
    code = "import sys; from tools import grade; grade.run_answers(sys.argv[1], sys.argv[2], sys.argv[3])"
    with open(run_dir / "stderr.txt", "w") as stderr_file:
        child = subprocess.Popen([sys.executable, "-c", code, str(plan_path), str(results_path), str(seed)],
                                 cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=stderr_file, start_new_session=True)
        timed_out = False
        try:
            child.wait(timeout=timeout + STARTUP_GRACE_S)
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_tree(child.pid)
        child.wait()
    results = [json.loads(line) for line in results_path.read_text().splitlines() if line.strip()]
    if timed_out:
        return results, f"the notebook ran past the time limit ({timeout:g} s)"
    if child.returncode != 0:
        return results, "the notebook's process died (it crashed or exited)"
    return results, None


def grade_notebook(notebook_path, chapter, timeout=300.0, checks=None, seed=0):
    """{"exercises": {id: outcome}, "cell_errors": [...], "reflections": {...}} for one notebook."""
    checks = checks or canonical_checks(chapter)
    points = max_points(chapter)
    run_dir, workdir = Path(tempfile.mkdtemp(prefix="grade-")), Path(tempfile.mkdtemp(prefix="grade-work-"))
    try:
        for name in SUPPORT_FILES:
            shutil.copy(ROOT / name, workdir / name)
        try:
            reflections = grading_plan(notebook_path, checks)["reflections"]
            results, problem = run_submission(notebook_path, checks, timeout, seed, workdir, run_dir)
        except Exception as error:  # not a notebook
            problem = first_line(f"the notebook could not be read: {type(error).__name__}: {error}")
            return {"exercises": {e: unscored(points[e], problem) for e in checks}, "cell_errors": [],
                    "reflections": {}}
        cards = {result["exercise"]: result for result in results if "points" in result}
        exercises = {e: outcome_of(cards[e]) if e in cards else unscored(points[e], problem or "the check did not run")
                     for e in checks}
        cell_errors = [result for result in results if "cell" in result]
        return {"exercises": exercises, "cell_errors": cell_errors, "reflections": reflections}
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def feedback_text(student, chapter, graded, seed):
    """The feedback file of one student, in Markdown."""
    exercises = graded["exercises"]
    total = sum(o["points"] for o in exercises.values())
    available = sum(o["max_points"] for o in exercises.values())
    lines = [f"# {chapter} exercises: feedback for {student}", "",
             f"{total} of {available} points. (Checked with random inputs, seed {seed}.)", ""]
    for exercise, outcome in exercises.items():
        lines += [f"## {exercise}: {outcome['status']}, {outcome['points']}/{outcome['max_points']} points", ""]
        if not outcome["parts"]:
            lines.append(f"- not checked: {outcome['detail']}")
        for result in outcome["parts"]:
            mark = "passed" if result["passed"] else f"not yet: {result['hint']}"
            lines.append(f"- {result['part']}: {mark}")
            if result["line"]:
                lines.append(f"  - the error came from your {result['line']}")
        for error in graded["cell_errors"]:
            if error["exercise"] == exercise:
                lines.append(f"- your answer cell raised {error['error']}"
                             + (f", at {error['line']}" if error["line"] else ""))
        if exercise in graded["reflections"]:
            lines += ["", "Your reflection:", "", graded["reflections"][exercise]]
        lines.append("")
    other_errors = [error for error in graded["cell_errors"] if error["exercise"] not in exercises]
    if other_errors:
        lines += ["## Other cells", ""]
        lines += [f"- cell {e['cell']} raised {e['error']}" + (f", at {e['line']}" if e["line"] else "")
                  for e in other_errors]
    return "\n".join(lines).rstrip() + "\n"


def class_table(rows, exercises, chapter, timeout):
    """The readable summary: one row per student, then each exercise's pass rate and mean points."""
    short = [exercise.split("_")[1] for exercise in exercises]
    width = max([len("student"), len("pass rate")] + [len(student) for student, _ in rows])
    lines = [f"Grades for {chapter}: {len(rows)} notebook(s), {len(exercises)} exercises, "
             f"time limit {timeout:g} s per notebook", "",
             "  ".join(["student".ljust(width)] + [name.ljust(6) for name in short] + ["points", "passed"])]
    for student, graded in rows:
        outcomes = [graded["exercises"][exercise] for exercise in exercises]
        cells = [f"{o['points']}/{o['max_points']}".ljust(6) for o in outcomes]
        total = sum(o["points"] for o in outcomes)
        available = sum(o["max_points"] for o in outcomes)
        passed = sum(o["status"] == "pass" for o in outcomes)
        lines.append("  ".join([student.ljust(width)] + cells + [f"{total}/{available}".ljust(6),
                                                                  f"{passed}/{len(exercises)}"]))
    rates = [sum(graded["exercises"][e]["status"] == "pass" for _, graded in rows) / len(rows) for e in exercises]
    means = [sum(graded["exercises"][e]["points"] for _, graded in rows) / len(rows) for e in exercises]
    lines.append("  ".join(["pass rate".ljust(width)] + [f"{rate:.0%}".ljust(6) for rate in rates]))
    lines.append("  ".join(["mean pts".ljust(width)] + [f"{mean:.1f}".ljust(6) for mean in means]))
    problems = [(student, exercise, graded["exercises"][exercise]) for student, graded in rows
                for exercise in exercises if graded["exercises"][exercise]["status"] != "pass"]
    if problems:
        lines += ["", "Not passed (the first hint or error):"]
        lines += [f"  {student} {exercise} {o['status']}: {o['detail']}" for student, exercise, o in problems]
    return lines


def write_reports(rows, exercises, chapter, out_dir, timeout, seed):
    """rows: [(student, graded notebook)]. Writes the CSV, table, feedback and reflections; returns the table."""
    csv_path, text_path = out_dir / f"grades_{chapter}.csv", out_dir / f"grades_{chapter}.txt"
    feedback_dir, reflections_path = out_dir / f"feedback_{chapter}", out_dir / f"reflections_{chapter}.md"
    with open(csv_path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "exercise", "status", "points", "max_points", "detail"])
        for student, graded in rows:
            for exercise in exercises:
                o = graded["exercises"][exercise]
                writer.writerow([student, exercise, o["status"], o["points"], o["max_points"], o["detail"]])
    feedback_dir.mkdir(exist_ok=True)
    for student, graded in rows:
        (feedback_dir / f"{student}.md").write_text(feedback_text(student, chapter, graded, seed))
    questions = sorted({key for _, graded in rows for key in graded["reflections"]})
    reflection_lines = [f"# {chapter}: answers to the reflective questions (not scored)", ""]
    for question in questions:
        reflection_lines += [f"## {question}", ""]
        reflection_lines += [f"**{student}:** {graded['reflections'][question]}\n" for student, graded in rows
                             if question in graded["reflections"]]
    reflections_path.write_text("\n".join(reflection_lines).rstrip() + "\n")
    lines = class_table(rows, exercises, chapter, timeout)
    lines += ["", f"Written: {csv_path}, {text_path}, {feedback_dir}/, {reflections_path}"]
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
    parser.add_argument("--out", help="folder for the reports (default: SUBMISSIONS)")
    parser.add_argument("--seed", type=int, help="seed of the private checks' random inputs (default: a new one)")
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

    seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
    checks = canonical_checks(args.chapter)
    exercises = list(checks)
    points = max_points(args.chapter)

    def grade(submission):
        student, path, problem = submission
        start = time.monotonic()
        if path is None:
            graded = {"exercises": {e: unscored(points[e], problem) for e in exercises},
                      "cell_errors": [], "reflections": {}}
        else:
            graded = grade_notebook(path, args.chapter, args.timeout, checks, seed)
        passed = sum(o["status"] == "pass" for o in graded["exercises"].values())
        print(f"graded {student}: {passed}/{len(exercises)} passed ({time.monotonic() - start:.0f} s)", flush=True)
        return student, graded

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(grade, submissions))
    print()
    print(write_reports(rows, exercises, args.chapter, out_dir, args.timeout, seed), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
