"""Write the hand-out exercise notebooks from the solution notebooks, which are the source.

    python tools/make_exercises.py            # write exercises/ from solutions/
    python tools/make_exercises.py --execute  # first run solutions/, storing their outputs
    python tools/make_exercises.py --check    # exit 1 if a hand-out is out of date

solutions/chNN_exercises.ipynb has, per exercise, a task (markdown), an answer cell and a
check cell that calls exercise_checks. In an answer cell the solution sits between lines
that read `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers); what lies
outside them, the "# your code here" line and the stub a learner starts from, stays.
The hand-out exercises/chNN_exercises.ipynb is the solution notebook with those regions
removed and without outputs. Cells carry their role in their metadata: tags "setup",
"answer" or "check", and "exercise": the exercise id.
"""

import argparse
import copy
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ANSWER_MARK = "# your code here"
CURRENT_ENV_KERNEL = "course-current-env"


def chapters():
    return sorted(path.name.split("_")[0] for path in (ROOT / "solutions").glob("ch*_exercises.ipynb"))


def notebook_path(folder, chapter):
    return ROOT / folder / f"{chapter}_exercises.ipynb"


def remove_solutions(source):
    """source without its solution regions, marker lines included.

    Raises ValueError for unbalanced or nested markers, and for a line that mentions a
    marker without being one exactly (a misspelt marker would hand the solution out)."""
    kept, inside = [], False
    for number, line in enumerate(source.split("\n"), 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside a solution region")
            inside = True
        elif marker == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without a {BEGIN} before it")
            inside = False
        elif "BEGIN SOLUTION" in line or "END SOLUTION" in line:
            raise ValueError(f"line {number}: write the marker alone on its line, as {BEGIN!r} or {END!r}")
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without an {END} after it")
    return "\n".join(kept)


def make_handout(solution):
    """The hand-out notebook for a solution notebook (which is left as it is)."""
    handout = copy.deepcopy(solution)
    # language_info of an executed notebook names the Python version that ran it; the
    # hand-out should not change with that.
    language = solution.metadata.get("language_info", {}).get("name", "python")
    handout.metadata["language_info"] = {"name": language}
    for cell in handout.cells:
        is_answer = "answer" in cell.metadata.get("tags", [])
        try:
            source = remove_solutions(cell.source)
        except ValueError as error:
            raise ValueError(f"cell {cell.get('id')}: {error}") from None
        if source != cell.source and not is_answer:
            raise ValueError(f"cell {cell.get('id')}: a solution region outside an answer cell")
        if source == cell.source and is_answer:
            raise ValueError(f"cell {cell.get('id')}: an answer cell without a solution region")
        cell.source = source
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return handout


def execute(notebook, folder, timeout=600):
    """Run a notebook top to bottom in a fresh kernel, from folder, storing its outputs."""
    from nbclient import NotebookClient

    NotebookClient(notebook, **current_env_kernel(), timeout=timeout, coalesce_streams=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timestamps: they would change on every run
    return notebook


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


def read_solution(chapter):
    """(solution notebook, its hand-out) of one chapter; ValueError names the notebook."""
    path = notebook_path("solutions", chapter)
    solution = nbformat.read(path, as_version=4)
    try:
        return solution, make_handout(solution)
    except ValueError as error:
        raise ValueError(f"{path.relative_to(ROOT)}: {error}") from None


def is_stale(chapter, handout):
    path = notebook_path("exercises", chapter)
    return not path.exists() or nbformat.read(path, as_version=4) != handout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare the hand-outs with the solutions")
    parser.add_argument("--execute", action="store_true",
                        help="first run the solution notebooks and store their outputs")
    parser.add_argument("--chapter", action="append", choices=chapters(), help="only this chapter")
    args = parser.parse_args(argv)
    chapter_list = args.chapter or chapters()

    try:
        if args.check:
            stale = [str(notebook_path("exercises", chapter).relative_to(ROOT))
                     for chapter in chapter_list if is_stale(chapter, read_solution(chapter)[1])]
            if stale:
                print(f"out of date: {', '.join(stale)}; run python tools/make_exercises.py")
                return 1
            print("the hand-outs in exercises/ match the notebooks in solutions/")
            return 0

        for chapter in chapter_list:
            solution, handout = read_solution(chapter)  # before running: a bad marker stops it early
            if args.execute:
                solution_path = notebook_path("solutions", chapter)
                print(f"running {solution_path.relative_to(ROOT)}", flush=True)
                nbformat.write(execute(solution, solution_path.parent), solution_path)
            if is_stale(chapter, handout):
                path = notebook_path("exercises", chapter)
                path.parent.mkdir(exist_ok=True)
                nbformat.write(handout, path)
                print(f"wrote {path.relative_to(ROOT)}")
    except ValueError as error:  # a solution notebook with misplaced markers
        print(error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
