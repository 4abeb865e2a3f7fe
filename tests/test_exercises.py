"""The exercises: hand-outs up to date with the solution notebooks (their source), checks
that reject wrong answers, solutions that pass, and the grader (tools/grade.py) on a
folder of fake submissions.

The slow tests start Jupyter kernels (a few seconds each); the checks themselves use
small models.
"""

import csv
import functools
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn

import exercise_checks as ec
import previous_chapters as pc

from tools import grade
from tools import make_exercises
from tools import private_checks

ROOT = Path(__file__).resolve().parent.parent

CHAPTERS = make_exercises.chapters()


def _notebook(folder, chapter):
    return nbformat.read(ROOT / folder / f"{chapter}_exercises.ipynb", as_version=4)


def _cells(notebook, tag):
    return [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]


def _check_arguments(exercise_id, source):
    """The names a check cell passes to its check; None if the cell is not in the usual form."""
    name = f"check_{exercise_id}"
    match = re.fullmatch(rf"from exercise_checks import {name}\n\n{name}\((\w+(?:, \w+)*)\)", source)
    return match and match.group(1).split(", ")


ALL_IDS = [cell.metadata["exercise"] for chapter in CHAPTERS
           for cell in _cells(_notebook("solutions", chapter), "check")]


# ---------------------------------------------------------------------------
# The solution notebooks and the hand-outs made from them
# ---------------------------------------------------------------------------

def test_handouts_match_their_solution_notebooks(capsys):
    assert make_exercises.main(["--check"]) == 0, capsys.readouterr().out


def test_every_chapter_has_three_to_five_checked_exercises():
    assert CHAPTERS == ["ch02", "ch03", "ch04", "ch05", "ch06", "ch07"]
    assert ALL_IDS == list(ec.EXERCISES)
    for chapter in CHAPTERS:
        solution = _notebook("solutions", chapter)
        checks = {cell.metadata["exercise"]: cell.source for cell in _cells(solution, "check")}
        assert 3 <= len(checks) <= 5, chapter
        assert list(checks) == ec.chapter_exercises(chapter)
        assert grade.canonical_checks(chapter) == checks
        for exercise_id, source in checks.items():
            assert _check_arguments(exercise_id, source), source


@pytest.mark.parametrize("folder", ["exercises", "solutions"])
def test_notebook_cells_carry_their_role_in_metadata(folder):
    for chapter in CHAPTERS:
        notebook = _notebook(folder, chapter)
        for cell in notebook.cells:
            assert "NBVAL" not in cell.source
        answers, checks = _cells(notebook, "answer"), _cells(notebook, "check")
        assert [c.metadata["exercise"] for c in checks] == ec.chapter_exercises(chapter)
        assert [c.metadata["exercise"] for c in answers] == ec.chapter_exercises(chapter)
        assert all(c.source.startswith(make_exercises.ANSWER_MARK) for c in answers)
        if folder == "exercises":
            code_cells = [c for c in notebook.cells if c.cell_type == "code"]
            assert all(not c.outputs and c.execution_count is None for c in code_cells)
            assert all("SOLUTION" not in c.source for c in notebook.cells)


def test_solution_notebooks_are_executed_top_to_bottom_and_every_check_passes():
    for chapter in CHAPTERS:
        code_cells = [cell for cell in _notebook("solutions", chapter).cells if cell.cell_type == "code"]
        assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1)), chapter
        assert not [output for cell in code_cells for output in cell.outputs if output.output_type == "error"]
        for cell in code_cells:
            if "check" in cell.metadata.get("tags", []):
                shown = "".join(output.get("text", "") for output in cell.outputs)
                assert shown.startswith(f"✅ {ec.label(cell.metadata['exercise'])} passed"), (chapter, shown)


B, E = make_exercises.BEGIN, make_exercises.END


@pytest.mark.parametrize("source,handout", [
    # a function's body, and the code that tries it out, go; the stub stays
    (f"# your code here\ndef f(x):\n    ...\n    {B}\n    return x\n\n\nprint(f(1))\n{E}",
     "# your code here\ndef f(x):\n    ..."),
    # two regions, with the learner's starting line between them
    (f"a = None\n{B}\na = 1\n{E}\n\n\ndef g():\n    ...\n    {B}\n    return a\n    {E}",
     "a = None\n\n\ndef g():\n    ..."),
    ("no region at all", "no region at all"),
])
def test_remove_solutions_drops_the_marked_regions_and_their_markers(source, handout):
    assert make_exercises.remove_solutions(source) == handout


@pytest.mark.parametrize("source,problem", [
    (f"{B}\n{B}\nx = 1\n{E}", "inside a solution region"),
    (f"x = 1\n{E}", "without a"),
    (f"{B}\nx = 1", "without an"),
    ("## BEGIN SOLUTION\nx = 1\n## END SOLUTION", "alone on its line"),  # one # short: would leak
    (f"x = 1  {B}\ny = 2\n{E}", "alone on its line"),
])
def test_remove_solutions_refuses_markers_that_would_leak_a_solution(source, problem):
    with pytest.raises(ValueError, match=problem):
        make_exercises.remove_solutions(source)


@pytest.mark.parametrize("tags,source,problem", [
    (["answer"], "x = 1", "an answer cell without a solution region"),
    (["setup"], f"{B}\nx = 1\n{E}", "a solution region outside an answer cell"),
])
def test_handout_refuses_solutions_it_cannot_hide(tags, source, problem):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source, metadata={"tags": tags})])
    with pytest.raises(ValueError, match=problem):
        make_exercises.make_handout(notebook)


def test_changed_solution_makes_its_handout_stale_until_it_is_rewritten(tmp_path, monkeypatch, capsys):
    for folder in ["exercises", "solutions"]:
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.setattr(make_exercises, "ROOT", tmp_path)
    path = tmp_path / "solutions" / "ch03_exercises.ipynb"
    notebook = nbformat.read(path, as_version=4)
    answer = next(cell for cell in notebook.cells if cell.get("id") == "ch03_ex2-answer")
    answer.source = answer.source.replace("mha_2d = None", "mha_2d = None  # a MultiHeadAttentionWrapper")
    nbformat.write(notebook, path)

    assert make_exercises.main(["--check"]) == 1
    assert "exercises/ch03_exercises.ipynb" in capsys.readouterr().out
    assert make_exercises.main([]) == 0
    assert capsys.readouterr().out == "wrote exercises/ch03_exercises.ipynb\n"
    assert make_exercises.main(["--check"]) == 0
    handout = nbformat.read(tmp_path / "exercises" / "ch03_exercises.ipynb", as_version=4)
    answer = next(cell for cell in handout.cells if cell.get("id") == "ch03_ex2-answer")
    assert answer.source == "# your code here\nmha_2d = None  # a MultiHeadAttentionWrapper"


# ---------------------------------------------------------------------------
# Every check rejects wrong answers, with a hint and without the answer
# ---------------------------------------------------------------------------

def _linear_copy(transpose, keys=("W_query", "W_key", "W_value")):
    def copy_weights(sa_v2, sa_v1):
        for key in keys:
            weight = getattr(sa_v2, key).weight.detach()
            setattr(sa_v1, key, nn.Parameter((weight.T if transpose else weight).clone()))
    return copy_weights


def _copy_backwards(sa_v2, sa_v1):
    with torch.no_grad():
        for key in ("W_query", "W_key", "W_value"):
            getattr(sa_v2, key).weight.copy_(getattr(sa_v1, key).T)


GPT2_CONFIGS = {name: {**pc.GPT_CONFIG_124M, **pc.MODEL_CONFIGS[full]} for name, full in
                [("gpt2-medium", "gpt2-medium (355M)"), ("gpt2-large", "gpt2-large (774M)"),
                 ("gpt2-xl", "gpt2-xl (1558M)")]}


def _count_without_head(cfg):
    model_params = sum(p.numel() for p in pc.GPTModel(cfg).parameters())
    return model_params - cfg["emb_dim"] * cfg["vocab_size"]


class _OnlyEmbeddingDropout(pc.GPTModel):
    def __init__(self, cfg):
        super().__init__({**cfg, "drop_rate": cfg["drop_rate_emb"]})


def _save_weights_only(path, model, optimizer, config):
    pc.save_gpt_checkpoint(path, model, config)


def _load_with_fresh_optimizer(path):
    model, _ = pc.load_gpt_checkpoint(path)
    return model, torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)


def _losses(eval_mode, swap=False):
    def train_val_losses(model, text, context_length, train_ratio):
        split = int(train_ratio * len(text))
        if eval_mode:
            model.eval()
        else:
            model.train()
        losses = []
        for part in (text[:split], text[split:]):
            loader = pc.create_dataloader_v1(part, batch_size=2, max_length=context_length,
                                             stride=context_length, shuffle=False, drop_last=False)
            losses.append(pc.calc_loss_loader(loader, model, "cpu"))
        return tuple(losses[::-1]) if swap else tuple(losses)
    return train_val_losses


def _last_block_without_norm(model, mode):
    for p in model.parameters():
        p.requires_grad = mode == "all"
    if mode == "last_block":
        for part in (model.trf_blocks[-1], model.out_head):
            for p in part.parameters():
                p.requires_grad = True


def _set_trainable(model, mode):
    for p in model.parameters():
        p.requires_grad = mode == "all"
    if mode == "last_block":
        for part in (model.trf_blocks[-1], model.final_norm, model.out_head):
            for p in part.parameters():
                p.requires_grad = True


def _phi3(always_input):
    def format_input_phi3(entry):
        prompt = "<|user|>\n" + entry["instruction"]
        if always_input or entry["input"].strip():
            prompt += "\n" + entry["input"]
        return prompt
    return format_input_phi3


def _phi3_example(entry):
    return _phi3(False)(entry) + "\n<|assistant|>\n" + entry["output"]


def _collate_masking(shift):
    def collate_masked(batch, pad_token_id=50256, ignore_index=-100):
        inputs, targets = pc.custom_collate_fn([ids for ids, _ in batch])
        for row, (_, prompt_length) in enumerate(batch):
            targets[row, :max(prompt_length + shift, 0)] = ignore_index
        return inputs, targets
    return collate_masked


def _lora_without_freezing(model, rank, alpha):
    return pc.replace_linear_with_lora(model, rank, alpha)


def _mha_gpt2(**changes):
    settings = {"d_in": 768, "d_out": 768, "context_length": 1024, "dropout": 0.0, "num_heads": 12}
    settings.update(changes)
    return pc.MultiHeadAttention(**settings)


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _loader_with_a_wrong_last_target(text, max_length, stride, batch_size):
    loader = pc.create_dataloader_v1(text, batch_size, max_length, stride, shuffle=False, drop_last=False)
    return [(inputs, torch.cat([targets[:, :-1], torch.zeros_like(targets[:, :1])], dim=1))
            for inputs, targets in loader]


def _overlap_lookup_table(max_length, stride):
    return {(4, 1): 3, (4, 4): 0, (8, 2): 6, (3, 5): 0, (256, 128): 128, (6, 4): 2}.get((max_length, stride), 0)


def _borrow_forward(sa_v2, sa_v1):
    sa_v1.forward = sa_v2.forward


def _sample_hot(model, idx, max_new_tokens, context_size, seed):
    torch.manual_seed(seed)
    return pc.generate(model, idx, max_new_tokens, context_size, temperature=3.0)


# The wrong answers an issue found passing; each must fail the public check and the grader's score.
ISSUE_WRONG_ANSWERS = [
    ("ch07_ex2", "the one-liner the task rules out"), ("ch02_ex2", "the last target of each window wrong"),
    ("ch03_ex1", "v2's forward method given to v1, no weight copied"),
    ("ch02_ex3", "a lookup table of the public check's inputs"), ("ch03_ex2", "dropout 0.5"),
    ("ch05_ex2", "temperature 3 without top-k"),
]


# exercise id -> {description: a function returning the answer (the check's arguments)}
WRONG_ANSWERS = {
    "ch02_ex1": {
        "single characters": lambda: (lambda text: list(text),),
        "whitespace words": lambda: (lambda text: text.split(),),
        "the pieces of one word, hard-coded": lambda: (lambda text: ["Ak", "w", "ir", "w", " ", "ier"],),
        "not written yet": lambda: (None,),
    },
    "ch02_ex2": {
        "shuffled": lambda: (lambda text, max_length, stride, batch_size: pc.create_dataloader_v1(
            text, batch_size, max_length, stride, shuffle=True, drop_last=False),),
        "last batch dropped": lambda: (lambda text, max_length, stride, batch_size: pc.create_dataloader_v1(
            text, batch_size, max_length, stride, shuffle=False, drop_last=True),),
        "length and stride swapped": lambda: (lambda text, max_length, stride, batch_size: pc.create_dataloader_v1(
            text, batch_size, stride, max_length, shuffle=False, drop_last=False),),
        "a stub": lambda: (lambda text, max_length, stride, batch_size: ...,),
        "the last target of each window wrong": lambda: (_loader_with_a_wrong_last_target,),
    },
    "ch02_ex3": {
        "negative when windows are apart": lambda: (lambda max_length, stride: max_length - stride,),
        "the stride": lambda: (lambda max_length, stride: stride,),
        "the number for 256/128, hard-coded": lambda: (lambda max_length, stride: 128,),
        "a lookup table of the public check's inputs": lambda: (_overlap_lookup_table,),
    },
    "ch03_ex1": {
        "no transpose": lambda: (_linear_copy(transpose=False),),
        "only the queries": lambda: (_linear_copy(transpose=True, keys=("W_query",)),),
        "copied the wrong way": lambda: (_copy_backwards,),
        "does nothing": lambda: (lambda sa_v2, sa_v1: None,),
        "v2's forward method given to v1, no weight copied": lambda: (_borrow_forward,),
    },
    "ch03_ex2": {
        "4-dimensional output": lambda: (pc.MultiHeadAttentionWrapper(3, 2, 6, 0.0, num_heads=2),),
        "one head": lambda: (pc.MultiHeadAttentionWrapper(3, 2, 6, 0.0, num_heads=1),),
        "another class": lambda: (pc.MultiHeadAttention(3, 2, 6, 0.0, num_heads=2),),
        "too short a context": lambda: (pc.MultiHeadAttentionWrapper(3, 1, 4, 0.0, num_heads=2),),
        "dropout 0.5": lambda: (pc.MultiHeadAttentionWrapper(3, 1, 6, 0.5, num_heads=2),),
    },
    "ch03_ex3": {
        "the count, hard-coded": lambda: (_mha_gpt2(), lambda module: 2_360_064),
        "only trainable parameters": lambda: (
            _mha_gpt2(), lambda module: sum(p.numel() for p in module.parameters() if p.requires_grad)),
        "weights without biases": lambda: (
            _mha_gpt2(), lambda module: sum(p.numel() for p in module.parameters() if p.dim() > 1)),
        "8 heads": lambda: (_mha_gpt2(num_heads=8), _count),
        "a 256-token context": lambda: (_mha_gpt2(context_length=256), _count),
    },
    "ch04_ex1": {
        "GPT-2 small's numbers, hard-coded": lambda: (
            lambda cfg: {"feed_forward": 4_722_432, "attention": 2_360_064},),
        "weights without biases": lambda: (lambda cfg: {
            "feed_forward": 8 * cfg["emb_dim"] ** 2, "attention": 4 * cfg["emb_dim"] ** 2},),
        "swapped": lambda: (lambda cfg: {
            "feed_forward": _count(pc.TransformerBlock(cfg).att),
            "attention": _count(pc.TransformerBlock(cfg).ff)},),
    },
    "ch04_ex2": {
        "medium with 12 heads": lambda: (
            {**GPT2_CONFIGS, "gpt2-medium": {**GPT2_CONFIGS["gpt2-medium"], "n_heads": 12}},
            lambda cfg: _count(pc.GPTModel(cfg))),
        "the output head forgotten": lambda: (GPT2_CONFIGS, _count_without_head),
        "a count that ignores the configuration": lambda: (GPT2_CONFIGS, lambda cfg: 406_212_608),
        "only the three changed settings": lambda: (
            {name: dict(pc.MODEL_CONFIGS[full]) for name, full in
             [("gpt2-medium", "gpt2-medium (355M)"), ("gpt2-large", "gpt2-large (774M)"),
              ("gpt2-xl", "gpt2-xl (1558M)")]}, _count),
    },
    "ch04_ex3": {
        "plain GPTModel": lambda: (pc.GPTModel,),
        "one rate for everything": lambda: (_OnlyEmbeddingDropout,),
        "not written yet": lambda: (None,),
    },
    "ch05_ex1": {
        "multiplied instead of divided": lambda: (lambda logits, t: torch.softmax(logits * t, dim=-1),),
        "temperature ignored": lambda: (lambda logits, t: torch.softmax(logits, dim=-1),),
        "no softmax": lambda: (lambda logits, t: logits / t,),
    },
    "ch05_ex2": {
        "sampling settings": lambda: ({"temperature": 1.0, "top_k": 5},
                                      lambda m, idx, n, ctx, seed: pc.generate(m, idx, n, ctx)),
        "no seed": lambda: ({"temperature": 0.0}, lambda m, idx, n, ctx, seed: pc.generate(
            m, idx, n, ctx, temperature=1.0, top_k=5)),
        "greedy instead of sampling": lambda: ({"temperature": 0.0},
                                               lambda m, idx, n, ctx, seed: pc.generate(m, idx, n, ctx)),
        "temperature 3 without top-k": lambda: ({"temperature": 0.0}, _sample_hot),
    },
    "ch05_ex3": {
        "dropout left on": lambda: (_losses(eval_mode=False),),
        "swapped": lambda: (_losses(eval_mode=True, swap=True),),
        "numbers, hard-coded": lambda: (lambda model, text, context_length, ratio: (10.98, 10.99),),
    },
    "ch05_ex4": {
        "optimizer state not saved": lambda: (_save_weights_only, _load_with_fresh_optimizer),
        "loads nothing": lambda: (_save_weights_only, lambda path: None),
    },
    "ch06_ex1": {
        "last token": lambda: (pc.calc_classifier_loss_batch,),
        "all positions": lambda: (lambda inputs, targets, model, device: torch.nn.functional.cross_entropy(
            model(inputs).flatten(0, 1), targets.repeat_interleave(inputs.shape[1])),),
    },
    "ch06_ex2": {
        "final norm left frozen": lambda: (_last_block_without_norm, _count),
        "counts every parameter": lambda: (_set_trainable, _count),
        "nothing changes": lambda: (lambda model, mode: model,
                                    lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)),
    },
    "ch06_ex3": {
        "padded to the longest message": lambda: (
            lambda csv_file, tokenizer, model: pc.SpamDataset(csv_file, tokenizer),),
        "padded with zeros": lambda: (lambda csv_file, tokenizer, model: pc.SpamDataset(
            csv_file, tokenizer, max_length=model.pos_emb.weight.shape[0], pad_token_id=0),),
    },
    "ch07_ex1": {
        "input line even when empty": lambda: (_phi3(always_input=True), _phi3_example),
        "Alpaca style": lambda: (pc.format_input, _phi3_example),
        "no new line before the assistant": lambda: (
            _phi3(False), lambda entry: _phi3(False)(entry) + "<|assistant|>\n" + entry["output"]),
    },
    "ch07_ex2": {
        "one target too many masked": lambda: (_collate_masking(0),),
        "one too few": lambda: (_collate_masking(-2),),
        "no masking": lambda: (lambda batch, pad_token_id=50256, ignore_index=-100:
                               pc.custom_collate_fn([ids for ids, _ in batch]),),
        "the one-liner the task rules out": lambda: (lambda batch, pad_token_id=50256, ignore_index=-100:
                                                     pc.custom_collate_fn(batch, mask_prompt=True),),
    },
    "ch07_ex3": {
        "not frozen": lambda: (_lora_without_freezing,),
        "frozen, but no LoRA": lambda: (lambda model, rank, alpha: model.requires_grad_(False),),
    },
}


def test_every_exercise_has_wrong_answers():
    assert set(WRONG_ANSWERS) == set(ALL_IDS)


@pytest.mark.parametrize("exercise_id,description", [
    (exercise_id, description) for exercise_id, answers in WRONG_ANSWERS.items() for description in answers])
def test_check_rejects_a_wrong_answer(exercise_id, description):
    passed, message = ec.judge(exercise_id, *WRONG_ANSWERS[exercise_id][description]())
    assert not passed, f"{exercise_id} accepted the wrong answer: {description}"
    assert message and "\n" not in message
    for number in ["2360064", "2,360,064", "4722432", "406212608", "406,212,608"]:
        assert number not in message


def _graders_score(exercise_id, answer, seed=0):
    return ec.score(exercise_id, *answer, extra_parts=private_checks.extra_parts(exercise_id, random.Random(seed)))


@pytest.mark.parametrize("exercise_id,description", ISSUE_WRONG_ANSWERS)
def test_wrong_answers_that_once_passed_fail_the_check_and_the_grader(exercise_id, description):
    answer = WRONG_ANSWERS[exercise_id][description]()
    assert not ec.judge(exercise_id, *answer)[0]
    card = _graders_score(exercise_id, WRONG_ANSWERS[exercise_id][description]())
    assert not card.passed and card.points < card.max_points


def test_every_exercise_has_private_parts_and_each_rejects_a_wrong_answer():
    assert set(private_checks.PRIVATE_PARTS) == set(ALL_IDS)
    for exercise_id, parts in private_checks.PRIVATE_PARTS.items():
        for name, function in parts:
            def rejects(answer):
                card = ec.score(exercise_id, *answer, extra_parts=[(name, functools.partial(function, random.Random(1)))])
                return not card.outcomes[name][0]
            assert any(rejects(make()) for make in WRONG_ANSWERS[exercise_id].values()), (exercise_id, name)


def test_a_part_that_fails_costs_its_point_only():
    card = ec.score("ch02_ex3", _overlap_lookup_table,
                    extra_parts=private_checks.extra_parts("ch02_ex3", random.Random(0)))
    assert card.max_points == len(ec.EXERCISES["ch02_ex3"].parts) + 1
    assert not card.passed and card.outcomes["private: other lengths and strides"][0] is False

    def rejects(overlap):
        raise ec.NotYet("a hint")

    partly = ec.score("ch02_ex3", lambda max_length, stride: max(max_length - stride, 0),
                      extra_parts=[("a part that rejects everything", rejects)])
    assert (partly.points, partly.max_points, partly.first_hint()) == (1, 2, "a hint")


def test_a_crash_in_the_learners_code_names_the_learners_line():
    source = "def overlap(max_length, stride):\n    return max_length // (stride - stride)\n"
    namespace = {}
    exec(compile(source, "<cell 7>", "exec"), namespace)
    import linecache
    linecache.cache["<cell 7>"] = (len(source), None, source.splitlines(True), "<cell 7>")
    card = ec.score("ch02_ex3", namespace["overlap"])
    _, hint, line = next(outcome for outcome in card.outcomes.values() if not outcome[0])
    assert "ZeroDivisionError" in hint
    assert line == "<cell 7>, line 2: return max_length // (stride - stride)"


@pytest.mark.needs_data
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercise_stubs_fail_every_check_without_crashing(chapter, monkeypatch):
    # The hand-out's setup and answer cells run here; each check gets what its cell passes.
    notebook = _notebook("exercises", chapter)
    monkeypatch.chdir(ROOT / "exercises")
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace = {}
    for cell in _cells(notebook, "setup") + _cells(notebook, "answer"):
        exec(compile(cell.source, f"<{chapter} {cell.get('id')}>", "exec"), namespace)
    for cell in _cells(notebook, "check"):
        exercise_id = cell.metadata["exercise"]
        arguments = [namespace[name] for name in _check_arguments(exercise_id, cell.source)]
        passed, message = ec.judge(exercise_id, *arguments)
        assert not passed and message, exercise_id


def test_check_shows_a_verdict_and_leaves_the_random_state_alone(capsys):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    ec.check_ch02_ex3(lambda max_length, stride: max(max_length - stride, 0))
    assert torch.equal(torch.rand(3), expected)
    ec.check_ch02_ex3(lambda max_length, stride: 0)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✅ Exercise 2.3 passed")
    assert out[1].startswith("❌ Exercise 2.3, not yet")


@pytest.mark.needs_data
def test_learner_code_that_raises_is_a_failure_with_the_error_named():
    def broken(text):
        raise KeyError("oops")

    passed, message = ec.judge("ch02_ex1", broken)
    assert not passed and "KeyError" in message


# ---------------------------------------------------------------------------
# Solutions
# ---------------------------------------------------------------------------

@pytest.mark.needs_data
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_notebook_passes_every_check(chapter, capsys, monkeypatch):
    # The code cells run top to bottom here, in this process, from solutions/ (a Jupyter
    # kernel per notebook would cost several seconds each; the grader test below runs
    # Chapter 3's solutions in one, and test_solution_notebooks_are_executed_... reads
    # the outputs of the nbclient run that make_exercises.py stored).
    notebook = nbformat.read(ROOT / "solutions" / f"{chapter}_exercises.ipynb", as_version=4)
    monkeypatch.chdir(ROOT / "solutions")
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace = {"__name__": "__main__"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: one thread is fastest, on a busy machine by far
    try:
        with torch.random.fork_rng(devices=[]):
            for cell in notebook.cells:
                if cell.cell_type == "code":
                    exec(compile(cell.source, f"<{chapter} {cell.get('id')}>", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    for exercise_id in ec.chapter_exercises(chapter):
        assert f"✅ {ec.label(exercise_id)} passed" in out, out
    assert "❌" not in out, out


# ---------------------------------------------------------------------------
# The grader
# ---------------------------------------------------------------------------

def _variant(destination, replacements, chapter="ch03", folder="solutions"):
    notebook = nbformat.read(ROOT / folder / f"{chapter}_exercises.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.get("id") in replacements:
            cell.source = replacements[cell.id]
    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, destination)


def _digest(paths):
    return {path: hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in paths}


def _run_grader(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def _grades(folder, chapter):
    with open(folder / f"grades_{chapter}.csv") as file:
        return {(row["student"], row["exercise"]): row for row in csv.DictReader(file)}


FAKE_VERDICT = """from IPython.display import display


def copy_weights(sa_v2, sa_v1):
    display({"text/plain": "✅ Exercise 3.1 passed: well done.",
             "application/vnd.llm-course.check+json": {"exercise": "ch03_ex1", "passed": True, "message": ""}},
            raw=True)
    print("✅ Exercise 3.1 passed: well done.")"""


@pytest.mark.slow
def test_grader_on_right_wrong_dishonest_crashing_and_endless_submissions(tmp_path):
    submissions = tmp_path / "submissions"
    # right: the solutions, stored in a subfolder, with a check cell "improved" by the student
    _variant(submissions / "ada" / "ch03_exercises.ipynb",
             {"ch03_ex1-check": "print('all good, trust me')"})
    # wrong: the handed-out notebook with exercise 3.3 answered by printing the number, and a crash
    _variant(submissions / "bob.ipynb", {
        "ch03_ex2-answer": "mha_2d = MultiHeadAttentionWrapper(3, 1, 6, 0.0, num_heads=2)",
        "ch03_ex3-answer": "mha_gpt2 = None\n\ndef count_parameters(module):\n    return module.numel()"},
        folder="exercises")
    # dishonest: the check module patched in the first answer cell, nothing else answered
    _variant(submissions / "dan.ipynb", {"ch03_ex1-answer": "import exercise_checks\n"
             "exercise_checks.judge = lambda *a: (True, '')\nexercise_checks.score = None\n"
             "def copy_weights(sa_v2, sa_v1):\n    pass"}, folder="exercises")
    # dishonest: a fake verdict displayed while the check runs; the forward method borrowed; dropout 0.5
    _variant(submissions / "fox.ipynb", {
        "ch03_ex1-answer": FAKE_VERDICT,
        "ch03_ex2-answer": "mha_2d = MultiHeadAttentionWrapper(3, 1, 6, 0.5, num_heads=2)",
        "ch03_ex3-answer": "def copy_weights(sa_v2, sa_v1):\n    sa_v1.forward = sa_v2.forward\n\n"
                           "check_ch03_ex1(copy_weights)\nmha_gpt2 = None\ncount_parameters = None"})
    # crashing: deletes the files it was given, then kills its own process
    _variant(submissions / "cy.ipynb", {"ch03_ex2-answer":
             "import os\nfor name in os.listdir('.'):\n    os.remove(name)\nos._exit(1)"})
    # endless loop (one that sleeps, to spare the CPU; a busy loop ends the same way);
    # named to come first, so that the other notebooks run while it waits for its time limit
    _variant(submissions / "abe.ipynb", {"ch03_ex3-answer": "import time\nwhile True:\n    time.sleep(0.1)"})
    (submissions / "eve").mkdir()  # a student folder without a notebook
    (submissions / "fay.ipynb").write_text("{ not a notebook")
    course_files = _digest(grade.SUPPORT_FILES + ["exercises/ch03_exercises.ipynb"])

    result = _run_grader(submissions, "--chapter", "ch03", "--timeout", "30", "--jobs", "2",
                         "--out", tmp_path, "--seed", "3")
    assert result.returncode == 0, result.stderr
    rows = _grades(tmp_path, "ch03")
    status = {key: row["status"] for key, row in rows.items()}
    assert {status[("ada", e)] for e in ["ch03_ex1", "ch03_ex2", "ch03_ex3"]} == {"pass"}
    assert rows[("ada", "ch03_ex1")]["points"] == rows[("ada", "ch03_ex1")]["max_points"] == "2"
    assert status[("bob", "ch03_ex1")] == "fail" and status[("bob", "ch03_ex2")] == "pass"
    assert status[("bob", "ch03_ex3")] == "error"  # count_parameters raises on the private check's modules
    assert "line 4: return module.numel()" in (tmp_path / "feedback_ch03" / "bob.md").read_text()
    assert status[("dan", "ch03_ex1")] == status[("dan", "ch03_ex2")] == "fail"
    assert rows[("dan", "ch03_ex1")]["points"] == "0"
    assert status[("fox", "ch03_ex1")] == status[("fox", "ch03_ex2")] == "fail"
    assert status[("cy", "ch03_ex1")] == "pass"
    assert status[("cy", "ch03_ex2")] == status[("cy", "ch03_ex3")] == "error"
    assert "died" in rows[("cy", "ch03_ex3")]["detail"]
    assert status[("abe", "ch03_ex1")] == status[("abe", "ch03_ex2")] == "pass"
    assert status[("abe", "ch03_ex3")] == "error" and "time limit" in rows[("abe", "ch03_ex3")]["detail"]
    assert status[("eve", "ch03_ex1")] == "error" and "no notebook" in rows[("eve", "ch03_ex1")]["detail"]
    assert status[("fay", "ch03_ex2")] == "error" and "could not be read" in rows[("fay", "ch03_ex2")]["detail"]
    summary = (tmp_path / "grades_ch03.txt").read_text()
    assert summary in result.stdout
    assert re.search(r"^ada +2/2 +2/2 +2/2 +6/6 +3/3$", summary, re.M), summary
    assert re.search(r"^pass rate +\d+% +", summary, re.M)
    assert _digest(course_files) == course_files  # the course's own files are untouched
    feedback = (tmp_path / "feedback_ch03" / "cy.md").read_text()
    assert "ch03_ex3: error, 0/2 points" in feedback and "died" in feedback


@pytest.mark.slow
def test_grader_fails_answers_fitted_to_the_public_inputs_and_names_the_failing_line(tmp_path):
    submissions = tmp_path / "submissions"
    _variant(submissions / "lee.ipynb", {
        "ch02_ex3-answer": "def overlap(max_length, stride):\n"
                           "    return {(4, 1): 3, (4, 4): 0, (8, 2): 6, (3, 5): 0, (256, 128): 128, (6, 4): 2}"
                           "[(max_length, stride)]",
        "ch02_ex2-answer": "def make_loader(text, max_length, stride, batch_size):\n"
                           "    loader = create_dataloader_v1(text, batch_size=batch_size, max_length=max_length,"
                           " stride=stride, shuffle=False, drop_last=False)\n"
                           "    return [(x, torch.cat([y[:, :-1], y[:, :1] * 0], 1)) for x, y in loader]"},
        chapter="ch02")
    result = _run_grader(submissions, "--chapter", "ch02", "--timeout", "60", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    rows = _grades(tmp_path, "ch02")
    assert rows[("lee", "ch02_ex1")]["status"] == "pass"
    assert rows[("lee", "ch02_ex2")]["status"] == "fail"
    assert rows[("lee", "ch02_ex3")]["status"] == "error"  # a KeyError for inputs it has not seen
    feedback = (tmp_path / "feedback_ch02" / "lee.md").read_text()
    assert "(256, 128): 128, (6, 4): 2}[(max_length, stride)]" in feedback  # the learner's own line
    assert "KeyError" in feedback


def test_grading_plan_runs_the_notebooks_code_and_checks_where_the_original_check_cells_stand(tmp_path):
    checks = grade.canonical_checks("ch03")
    notebook = nbformat.read(ROOT / "solutions" / "ch03_exercises.ipynb", as_version=4)
    early = nbformat.v4.new_code_cell("check_ch03_ex1(lambda *answer: None)")
    notebook.cells.insert(3, early)  # a call of its own, before the real check cell: it stays a code cell
    for cell in notebook.cells:
        if cell.get("id") == "ch03_ex1-check":
            cell.source = "print('✅ Exercise 3.1 passed')"  # a faked check cell
        if cell.get("id") == "ch03_ex2-check":
            cell.metadata = {}  # metadata lost
    notebook.cells = [cell for cell in notebook.cells if cell.get("id") != "ch03_ex3-check"]  # deleted
    nbformat.write(notebook, tmp_path / "in.ipynb")
    steps = grade.grading_plan(tmp_path / "in.ipynb", checks)["steps"]
    check_steps = [(i, step) for i, step in enumerate(steps) if "check" in step]
    assert [step["check"] for _, step in check_steps] == ["ch03_ex1", "ch03_ex2", "ch03_ex3"]
    assert check_steps[0][1]["arguments"] == ["copy_weights"]
    assert check_steps[2][1]["arguments"] == ["mha_gpt2", "count_parameters"]
    assert check_steps[2][0] == len(steps) - 1
    sources = [step["source"] for step in steps if "cell" in step]
    assert "check_ch03_ex1(lambda *answer: None)" in sources
    assert not any("trust" in s or "✅" in s for s in sources)


def test_private_checks_stay_out_of_the_handout():
    from tools import handout

    names = {name for _, name in handout.handout_files("ch03", solutions=True)}
    assert "private_checks.py" not in names and not any("private" in name for name in names)
    assert "private_checks" not in (ROOT / "exercise_checks.py").read_text().split('"""')[2]


@pytest.mark.parametrize("args,message", [
    (["does-not-exist", "--chapter", "ch03"], "no such folder"),
    (["{tmp}", "--chapter", "ch99"], "unknown chapter"),
    (["{tmp}", "--chapter", "ch03"], "no notebooks"),
    (["{tmp}"], "required"),
])
def test_grader_rejects_bad_arguments_in_one_line(tmp_path, args, message):
    result = _run_grader(*[arg.format(tmp=tmp_path) for arg in args])
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------
# Handing a chapter out
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_handout_puts_a_chapter_and_its_exercises_in_one_folder(tmp_path):
    from tools import handout

    assert handout.main(["ch05", str(tmp_path / "out"), "--solutions"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([
        "ch05_pretraining.ipynb", "ch05_exercises.ipynb", "ch05_solutions.ipynb", "previous_chapters.py",
        "gpt_download.py", "download_engine.py", "gpt2_weights.py", "tf_checkpoint.py",
        "safe_checkpoints.py", "judge_client.py", "exercise_checks.py", "requirements.txt"])
    # The exercise notebook's first cell finds the modules beside it.
    setup = nbformat.read(tmp_path / "out" / "ch05_exercises.ipynb", as_version=4).cells[1].source
    code = setup + "\nprint(sys.path[0])"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "out", capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == tmp_path / "out"


def test_handout_rejects_an_unknown_chapter_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "handout.py"), "ch01", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown chapter" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
