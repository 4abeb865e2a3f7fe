"""Mutation check: break previous_chapters.py in one known way at a time; the fast unit tests
must fail every time.

Each mutation deletes or changes one statement inside a named function (found with `ast`,
so lines added elsewhere don't matter): a training loop without loss.backward(), an
evaluation without model.eval(), attention without its causal mask, and so on. For each,
a temporary copy of previous_chapters.py with that one change goes first on the import
path, and the mutation's test files run with `pytest -x`. The test processes are forked
from this one after the heavy imports are done, so each mutation costs only its tests.

    python tools/mutation_check.py                 # every mutation: a table, exit 1 if one survives
    python tools/mutation_check.py --only collate  # the mutations whose name contains "collate"
    python tools/mutation_check.py --list          # the mutations and their test files

A mutation that can't be located (its function or statement is gone or was renamed) is
reported "not applied" and counts as a failure: update MUTATIONS to match the code.
"""

import argparse
import ast
import functools
import importlib
import importlib.util
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "previous_chapters.py"
PYTEST_ARGS = ["-x", "-q", "-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:nbval"]
# Imported once before forking, with what previous_chapters and the tests import: pytest,
# and torch._dynamo, which an optimizer's first step imports.
PRELOAD = ("pytest", "torch._dynamo")

LOOPS = ("tests/test_training_loops.py",)
ATTENTION = ("tests/test_ch03.py",)
MODEL = ("tests/test_load_weights.py", "tests/test_ch04.py")
COLLATE = ("tests/test_ch07.py",)


@dataclass(frozen=True)
class Mutation:
    function: str      # "train_model_simple", or "Class.method"
    target: str        # a statement or expression in it, as ast.unparse writes it
    replacement: str   # "pass" deletes the statement
    tests: tuple       # the test files that must notice
    occurrence: int = 0  # which match, in source order, when the target occurs more than once
    what: str = ""     # a short description for the table (default: "no <target>")

    @property
    def name(self):
        return f"{self.function}: {self.what or 'no ' + self.target}"


def deletions(function, targets, tests):
    return [Mutation(function, target, "pass", tests) for target in targets]


MUTATIONS = [
    # Training loops: each step of the update, and training mode at the start of each epoch.
    *deletions("train_model_simple",
               ["optimizer.zero_grad()", "loss.backward()", "optimizer.step()", "model.train()"], LOOPS),
    *deletions("train_classifier_simple",
               ["optimizer.zero_grad()", "loss.backward()", "optimizer.step()", "model.train()"], LOOPS),
    Mutation("train_model", "optimizer.zero_grad()", "pass", LOOPS, 0, "no optimizer.zero_grad() before training"),
    Mutation("train_model", "optimizer.zero_grad()", "pass", LOOPS, 1, "no optimizer.zero_grad() after a step"),
    *deletions("train_model",
               ["(loss / accumulation_steps).backward()", "optimizer.step()", "run_model.train()"], LOOPS),
    # Evaluation helpers: dropout off while evaluating, back on for training.
    *deletions("evaluate_model", ["model.eval()", "model.train()"], LOOPS),
    *deletions("generate_and_print_sample", ["model.eval()", "model.train()"], LOOPS),
    *deletions("evaluate_classifier", ["model.eval()", "model.train()"], LOOPS),
    *deletions("calc_accuracy_loader", ["model.eval()"], LOOPS),
    *deletions("classifier_predictions", ["model.eval()"], LOOPS),
    # The causal mask, in every attention module and both of MultiHeadAttention's paths.
    Mutation("CausalAttention.forward",
             "attn_scores = attn_scores.masked_fill(self.mask[:num_tokens, :num_tokens], float('-inf'))",
             "pass", ATTENTION, what="no causal mask"),
    Mutation("MultiHeadAttention.forward",
             "attn_scores = attn_scores.masked_fill(self.mask[:num_tokens, :num_tokens], float('-inf'))",
             "pass", ATTENTION, what="no causal mask (written out)"),
    Mutation("MultiHeadAttention.forward", "is_causal=True", "is_causal=False", ATTENTION,
             what="no causal mask (SDPA)"),
    # The shortcut connections.
    Mutation("TransformerBlock.forward", "x + self.drop_shortcut(self.att(self.norm1(x)))",
             "self.drop_shortcut(self.att(self.norm1(x)))", MODEL, what="no attention shortcut"),
    Mutation("TransformerBlock.forward", "x + self.drop_shortcut(self.ff(self.norm2(x)))",
             "self.drop_shortcut(self.ff(self.norm2(x)))", MODEL, what="no feed-forward shortcut"),
    # OpenAI's (in, out) weights must be transposed into nn.Linear's (out, in).
    *[Mutation("load_weights_into_gpt", f"{matrix}.T", matrix, MODEL, what=f"no transpose of {matrix}")
      for matrix in ["q_w", "k_w", "v_w", "p['attn']['c_proj']['w']", "p['mlp']['c_fc']['w']",
                     "p['mlp']['c_proj']['w']"]],
    # Padding (and, on request, the prompt) must not count in the instruction loss.
    Mutation("custom_collate_fn", "y[length:] = ignore_index", "pass", COLLATE,
             what="padding targets not masked with -100"),
    Mutation("custom_collate_fn", "y[:max(prompt_length - 1, 0)] = ignore_index", "pass", COLLATE,
             what="prompt targets not masked with -100"),
]


@functools.lru_cache(maxsize=1)
def parse(source):
    return ast.parse(source)


def find_function(tree, dotted_name):
    """The FunctionDef (or ClassDef) reached by following dotted_name from the module's top level."""
    node = tree
    for part in dotted_name.split("."):
        node = next((child for child in node.body
                     if isinstance(child, (ast.FunctionDef, ast.ClassDef)) and child.name == part), None)
        if node is None:
            return None
    return node


def locate(source, mutation):
    """The node `mutation` changes: its target's occurrence-th match inside its function, or None."""
    function = find_function(parse(source), mutation.function)
    if function is None:
        return None
    want_statement = mutation.replacement == "pass"
    matches = sorted((node for node in ast.walk(function)
                      if isinstance(node, ast.stmt) == want_statement and hasattr(node, "end_col_offset")
                      and ast.unparse(node) == mutation.target),
                     key=lambda node: (node.lineno, node.col_offset))
    return matches[mutation.occurrence] if mutation.occurrence < len(matches) else None


def apply(source, mutation):
    """`source` with the mutation applied, or None when its target can't be found."""
    node = locate(source, mutation)
    if node is None:
        return None
    data = source.encode()  # ast's column offsets count UTF-8 bytes
    line_starts = [0]
    for line in data.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    start = line_starts[node.lineno - 1] + node.col_offset
    end = line_starts[node.end_lineno - 1] + node.end_col_offset
    return (data[:start] + mutation.replacement.encode() + data[end:]).decode()


def pytest_in_this_process(module_source, tests, log_path, result_pipe):
    """Run `tests` against `module_source` as previous_chapters; send (exit code, first failure)."""
    import pytest

    module_dir = log_path.with_suffix("")  # beside the log, e.g. mutation-03/previous_chapters.py
    module_dir.mkdir()
    (module_dir / "previous_chapters.py").write_text(module_source, encoding="utf-8")
    sys.path[:0] = [str(module_dir), str(ROOT)]  # the mutant shadows the real module
    # Imported now: pytest puts the repository first on sys.path when it loads conftest.py.
    importlib.import_module("previous_chapters")
    os.chdir(ROOT)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)

    class FirstFailure:
        nodeid = None

        def pytest_runtest_logreport(self, report):
            if report.failed and self.nodeid is None:
                self.nodeid = report.nodeid

    recorder = FirstFailure()
    exit_code = pytest.main([*tests, *PYTEST_ARGS], plugins=[recorder])
    result_pipe.send((int(exit_code), recorder.nodeid))


def run_tests(module_source, tests, log_path):
    """(pytest's exit code, the first failing test) in a forked process."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=pytest_in_this_process,
                              args=(module_source, tests, log_path, send))
    process.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError:  # the process died before reporting
        result = (None, None)
    process.join()
    return result


def check(mutation, source, log_path):
    """(outcome, detail) for one mutation."""
    mutated = apply(source, mutation)
    if mutated is None:
        return "not applied", "target not found: update MUTATIONS"
    exit_code, failed = run_tests(mutated, mutation.tests, log_path)
    if exit_code == 1 and failed:
        return "killed", failed
    if exit_code == 0:
        return "SURVIVED", "no test failed in " + " ".join(mutation.tests)
    return "error", f"pytest exit code {exit_code}, see {log_path}"


def preload(paths):
    """Import the installed packages that `paths` import at their top level, once, so the
    forked test processes start without importing them again. Modules of this repository
    are left alone, wherever Python would find them (an editable install of another
    checkout, too): a parent that had imported previous_chapters would hand it on unmutated."""
    for name, attributes in [(name, ()) for name in PRELOAD] + [
            item for path in paths for item in top_level_imports(path.read_text(encoding="utf-8"))]:
        top = name.split(".")[0]
        if (ROOT / f"{top}.py").exists() or (ROOT / top).is_dir():
            continue
        spec = importlib.util.find_spec(top)
        if spec is None or spec.origin is None:
            continue
        module = importlib.import_module(name)
        for attribute in attributes:  # e.g. transformers loads GPT2LMHeadModel on first use
            getattr(module, attribute, None)


def top_level_imports(source):
    """(module, names imported from it) for each top-level import statement of `source`."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            yield from ((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module, tuple(alias.name for alias in node.names)


def print_table(rows):
    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="only the mutations whose name contains TEXT (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)

    mutations = [m for m in MUTATIONS if not args.only or any(t in m.name for t in args.only)]
    if not mutations:
        print(f"no mutation name contains {' or '.join(map(repr, args.only))}: "
              "see python tools/mutation_check.py --list", file=sys.stderr)
        return 2
    if args.list:
        print_table([("mutation", "tests")] + [(m.name, " ".join(m.tests)) for m in mutations])
        return 0
    if "fork" not in multiprocessing.get_all_start_methods():
        print("tools/mutation_check.py needs os.fork (Linux or macOS; on Windows use WSL)",
              file=sys.stderr)
        return 2

    started = time.perf_counter()
    source = MODULE.read_text(encoding="utf-8")
    test_files = sorted({test for m in mutations for test in m.tests})
    preload([MODULE, *(ROOT / test for test in test_files)])
    log_dir = Path(tempfile.mkdtemp(prefix="mutation-logs-"))
    exit_code, failed = run_tests(source, test_files, log_dir / "unmutated.log")
    if exit_code != 0:
        print(f"the unmutated tests fail ({failed or f'pytest exit code {exit_code}'}), so no "
              f"mutation can be judged: fix them first (log: {log_dir / 'unmutated.log'})",
              file=sys.stderr)
        return 2

    rows = [("mutation", "result", "killed by")]
    for i, mutation in enumerate(mutations):
        outcome, detail = check(mutation, source, log_dir / f"mutation-{i:02d}.log")
        rows.append((mutation.name, outcome, detail))
        print(f"[{i + 1}/{len(mutations)}] {outcome}: {mutation.name}", file=sys.stderr, flush=True)
    print_table(rows)
    killed = sum(row[1] == "killed" for row in rows[1:])
    print(f"\nscore: {killed}/{len(mutations)} mutations killed, "
          f"{time.perf_counter() - started:.0f} s")
    if killed < len(mutations):
        print(f"the mutated modules and the tests' output are in {log_dir}")
        return 1
    shutil.rmtree(log_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
