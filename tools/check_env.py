"""Is this machine ready for the course? Prints what it finds, then one line per problem.

    python tools/check_env.py                      # checks the run size LLM_COURSE_RUN picks
    python tools/check_env.py --run-size full

It prints the versions of Python and of every package in requirements.txt, the device the
chapters will compute on (`choose_device`), the memory and the free disk space, and whether
an Ollama server answers (only chapter 7's judge needs one). Exit status 0: nothing missing;
1: something is (each problem is one line starting with "problem:").
"""

import argparse
import importlib.metadata
import os
import platform
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIN_PYTHON = (3, 10)  # pyproject.toml's requires-python
GIB = 2**30
# Memory the largest chapter of each run size needs: the kernels' peaks that
# tools/run_notebooks.py printed on the course's CPU (BENCHMARKS.md); for "full", what one
# training step of chapter 7's GPT-2 medium needs (tools/ch07_memory.py).
MEMORY_GIB = {"quick": 4.4, "laptop": 7.4, "full": 9.0}
# Disk for the downloads and the packages: a requirements.txt install took 1.3 GB (CPU
# PyTorch), GPT-2 small's checkpoint is about 0.5 GB and GPT-2 medium's (full run) 1.4 GB.
DISK_GB = {"quick": 1.8, "laptop": 1.8, "full": 3.2}


def requirements(path):
    """(name, minimum version or None) for each line of a requirements file."""
    wanted = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:>=\s*([0-9][0-9.]*))?.*", line)
        if match:
            wanted.append((match.group(1), match.group(2)))
    return wanted


def version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def check_packages(wanted, version=importlib.metadata.version):
    """Print each package's version; return one problem line per missing or old package."""
    problems = []
    for name, minimum in wanted:
        try:
            found = version(name)
        except importlib.metadata.PackageNotFoundError:
            print(f"  {name}: not installed")
            problems.append(f"{name} is not installed: pip install -r requirements.txt")
            continue
        print(f"  {name} {found}")
        if minimum and version_tuple(found) < version_tuple(minimum):
            problems.append(f"{name} {found} is older than the {minimum} the course needs: "
                            f'pip install -U "{name}>={minimum}"')
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-size", choices=sorted(MEMORY_GIB),
                        help="the run size to check for (default: the one LLM_COURSE_RUN picks)")
    parser.add_argument("--requirements", default=ROOT / "requirements.txt",
                        help="the requirements file to check (default: the course's)")
    args = parser.parse_args(argv)
    problems = []

    print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    if sys.version_info[:2] < MIN_PYTHON:
        problems.append(f"Python {platform.python_version()} is too old: the course needs "
                        f"{'.'.join(map(str, MIN_PYTHON))} or newer")
    print("Packages:")
    problems += check_packages(requirements(args.requirements))

    run_size = args.run_size
    sys.path.insert(0, str(ROOT))
    try:
        import previous_chapters as course
    except Exception as error:  # a missing package, already reported above
        print(f"Device: unknown (the course's code does not import: {type(error).__name__}: {error})")
        problems.append(f"previous_chapters.py does not import: {error}")
        course = None
    if course is not None:
        try:
            run_size = run_size or course.run_size()
        except ValueError as error:
            problems.append(str(error))
        device = course.choose_device()
        print(f"Device: {device}" + ("  (LLM_COURSE_DEVICE chose it)" if os.environ.get("LLM_COURSE_DEVICE") else ""))
    run_size = run_size if run_size in MEMORY_GIB else "laptop"
    print(f"Run size: {run_size}")

    try:
        import psutil
    except ImportError:
        print("Memory: unknown (psutil is not installed)")
    else:
        memory = psutil.virtual_memory()
        print(f"Memory: {memory.total / GIB:.1f} GiB, {memory.available / GIB:.1f} GiB free now")
        if memory.total / GIB < MEMORY_GIB[run_size]:
            smaller = "quick" if run_size != "quick" else None
            problems.append(f"{memory.total / GIB:.1f} GiB of memory is too little for the "
                            f"{run_size!r} run size (it peaked at {MEMORY_GIB[run_size]} GiB)"
                            + (f": set LLM_COURSE_RUN={smaller}" if smaller else ""))

    free_gb = shutil.disk_usage(ROOT).free / 1e9
    print(f"Disk: {free_gb:.1f} GB free beside the course")
    if free_gb < DISK_GB[run_size]:
        problems.append(f"{free_gb:.1f} GB of free disk is too little for the {run_size!r} run "
                        f"size's downloads (about {DISK_GB[run_size]} GB with the packages)")

    if course is not None:
        host = os.environ.get("OLLAMA_HOST", "").strip() or course.OLLAMA_DEFAULT_HOST
        answers = course.ollama_is_reachable(host, timeout=1.0)
        print(f"Ollama at {host}: {'answers' if answers else 'not running'}"
              " (optional: only chapter 7's judge uses it)")

    for line in problems:
        print(f"problem: {line}")
    print("Ready." if not problems else f"{len(problems)} problem(s) to fix first.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
