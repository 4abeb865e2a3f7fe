"""tools/mutation_check.py: mutations land on the named statement, and one real run kills one.

The full run (every mutation) takes minutes, so it is not part of the test suite:
CONTRIBUTING.md, "Run the tests", shows how to run it.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tools import mutation_check
from tools.mutation_check import MUTATIONS, Mutation, apply

ROOT = Path(__file__).resolve().parent.parent

SOURCE = '''\
def train(model, optimizer):
    optimizer.zero_grad()
    for batch in model.batches:
        loss = model(batch)  # a comment stays
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


class Block:
    def forward(self, x):
        return x + self.layer(x)


def other(optimizer):
    loss.backward()
'''


def test_a_deletion_hits_only_the_named_function_and_occurrence():
    mutated = apply(SOURCE, Mutation("train", "optimizer.zero_grad()", "pass", (), occurrence=1))
    assert mutated == SOURCE.replace("        optimizer.zero_grad()\n", "        pass\n")

    mutated = apply(SOURCE, Mutation("train", "loss.backward()", "pass", ()))
    assert mutated.count("loss.backward()") == 1  # other()'s stays
    assert "        pass\n        optimizer.step()" in mutated


def test_an_expression_is_replaced_inside_a_method():
    mutated = apply(SOURCE, Mutation("Block.forward", "x + self.layer(x)", "self.layer(x)", ()))
    assert mutated == SOURCE.replace("return x + self.layer(x)", "return self.layer(x)")


def test_a_target_that_is_not_there_is_not_applied():
    assert apply(SOURCE, Mutation("train", "optimizer.zero_grad()", "pass", (), occurrence=2)) is None
    assert apply(SOURCE, Mutation("train", "model.eval()", "pass", ())) is None
    assert apply(SOURCE, Mutation("evaluate", "loss.backward()", "pass", ())) is None


def test_a_mutation_not_found_is_reported_without_running_tests(tmp_path):
    outcome, detail = mutation_check.check(Mutation("train", "model.eval()", "pass", ("tests/none.py",)),
                                           SOURCE, tmp_path / "log")
    assert outcome == "not applied" and "MUTATIONS" in detail
    assert not (tmp_path / "log").exists()


def test_every_listed_mutation_is_found_in_previous_chapters():
    source = mutation_check.MODULE.read_text(encoding="utf-8")
    missing = [m.name for m in MUTATIONS if apply(source, m) is None]
    assert not missing, f"update MUTATIONS in tools/mutation_check.py: {missing}"
    for m in MUTATIONS:
        assert all((ROOT / test).is_file() for test in m.tests), m.name


@pytest.mark.slow
@pytest.mark.needs_data
def test_one_real_mutation_is_killed():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "mutation_check.py"), "--only", "padding targets"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("custom_collate_fn"))
    assert "killed" in row and "tests/test_ch07.py::" in row
    assert "1/1 mutations killed" in result.stdout


def test_an_unknown_name_is_one_line_and_exit_2():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "mutation_check.py"), "--only", "no such mutation"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--list" in result.stderr
