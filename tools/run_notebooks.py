"""Re-run the course notebooks in a fresh kernel and write their outputs back in place.

    python tools/run_notebooks.py ch05_pretraining.ipynb --mode full
    python tools/run_notebooks.py --mode quick              # every chapter, CI-sized
    python tools/run_notebooks.py ch06_classification.ipynb --mode laptop --dry-run

The stored outputs are what a reader sees on GitHub, so refresh a notebook with
this command after changing it. `--mode` sets LLM_COURSE_RUN for the kernel
(`quick`: CI-sized, `laptop`: the largest run that fits in under an hour on a
2-core CPU, `full`: the book's run); downloads honour LLM_COURSE_MIRROR as
usual, and with internet access and no mirror set, chapters 5-7 load OpenAI's
real weights. Each cell's time is printed as it finishes, then the notebook's
wall time and the kernel's peak memory. Progress bars are stored as the reader's screen
showed them at the end, not redraw by redraw. `--output-dir DIR` writes the executed
notebooks there instead (to compare runs), `--dry-run` writes nothing.
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from tools.export import chapter_notebooks

ROOT = Path(__file__).resolve().parent.parent
MODES = ("quick", "laptop", "full")
RUN_ENV = "LLM_COURSE_RUN"
QUICK_ENV = "LLM_COURSE_QUICK"  # the older switch; RUN_ENV replaces it for the kernel


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every chapter and appendix, in export order)")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--cell-timeout", type=int, default=4 * 3600,
                        help="seconds one cell may run (default: 4 hours)")
    parser.add_argument("--output-dir", type=Path,
                        help="write the executed notebooks here instead of in place")
    parser.add_argument("--dry-run", action="store_true", help="run, but do not write outputs back")
    return parser.parse_args(argv)


def peak_memory_mib(pid):
    """The peak resident memory of process `pid` (Linux's VmHWM), or None elsewhere."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class ProgressClient(NotebookClient):
    """A NotebookClient that echoes what cells print and each cell's time as it finishes."""

    def __init__(self, nb, name, **kwargs):
        super().__init__(nb, **kwargs)
        self.name = name
        self.code_cells = sum(1 for cell in nb.cells if cell.cell_type == "code")
        self.done = 0
        self.peak_mib = None
        self.on_cell_start = self._start
        self.on_cell_executed = self._finished

    def _start(self, cell, cell_index):
        self._cell_started = time.monotonic()

    def output(self, outs, msg, display_id, cell_index):
        # Echo printed lines as they come, so a long training cell shows signs of life.
        if msg["msg_type"] == "stream":
            for line in msg["content"]["text"].splitlines():
                if line.strip():
                    print(f"    | {line.strip()[-100:]}", flush=True)
        return super().output(outs, msg, display_id, cell_index)

    def _finished(self, cell, cell_index, execute_reply):
        self.done += 1
        seconds = time.monotonic() - self._cell_started
        first_line = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
        print(f"  {self.name}: cell {self.done}/{self.code_cells} {seconds:7.1f} s  {first_line}",
              flush=True)
        pid = getattr(self.km.provisioner, "pid", None)
        self.peak_mib = peak_memory_mib(pid) if pid else None


PROGRESS_BAR = re.compile(r"[^|\n]*\d+%\|")


def final_screen_text(text):
    """What a terminal shows of text that redraws its lines with carriage returns (progress
    bars): the last state of each line."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def is_progress_bar(text):
    """True for text that is only tqdm bars ("epoch 1:  40%|████      | 2/5 [00:08<00:13]")."""
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and all(PROGRESS_BAR.match(line) for line in lines)


def join_streams(outputs):
    """Outputs with every run of consecutive outputs of one stream joined into one. The
    kernel sends what a cell prints in pieces, whenever its I/O thread flushes (a flush
    between the words of one print() would otherwise split a line in two outputs)."""
    joined = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (output.output_type == "stream" and previous is not None
                and previous.output_type == "stream" and previous.name == output.name):
            previous.text += output.text  # one stream, as the screen shows it
        else:
            joined.append(output)
    return joined


def keep_final_screen(nb):
    """Store what the reader's screen showed, not every redraw of a progress bar (a long
    loop redraws its bar thousands of times, each redraw a separate output), and not the
    finished bars either: they told a waiting learner how far the loop was, and in a
    stored notebook they are only clutter between the lines the cell printed."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = join_streams(cell.outputs)
        for output in outputs:
            if output.output_type == "stream":
                output.text = final_screen_text(output.text)
        kept = [output for output in outputs if output.output_type != "stream" or (
            output.text.strip() and not (output.name == "stderr" and is_progress_bar(output.text)))]
        cell.outputs = join_streams(kept)  # the printed lines that stood between bars: one output
    return nb


def run_notebook(path, cell_timeout):
    """Execute `path` top to bottom; returns (the executed notebook, seconds, peak MiB)."""
    nb = nbformat.read(path, as_version=4)
    client = ProgressClient(nb, path.name, timeout=cell_timeout, kernel_name="python3",
                            record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    client.execute()
    return nb, time.monotonic() - started, client.peak_mib


def main(argv=None):
    args = parse_args(argv)
    notebooks = args.notebooks or chapter_notebooks(ROOT)
    missing = [str(path) for path in notebooks if not path.is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    os.environ[RUN_ENV] = args.mode
    os.environ.pop(QUICK_ENV, None)
    mirror = os.environ.get("LLM_COURSE_MIRROR")
    print(f"mode {args.mode}; downloads from {mirror or 'the real URLs'}", flush=True)
    for path in notebooks:
        print(f"{path.name}: running", flush=True)
        try:
            nb, seconds, peak_mib = run_notebook(path.resolve(), args.cell_timeout)
        except (CellExecutionError, DeadKernelError) as error:
            print(f"{path.name}: FAILED, outputs not written\n{error}", file=sys.stderr)
            return 1
        memory = f", kernel peak memory {peak_mib:,.0f} MiB" if peak_mib else ""
        print(f"{path.name}: done in {seconds / 60:.1f} min{memory}", flush=True)
        keep_final_screen(nb)
        if args.output_dir:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, args.output_dir / path.name)
        elif not args.dry_run:
            nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the notebook being run was not written", file=sys.stderr)
        sys.exit(130)
