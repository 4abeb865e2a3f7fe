"""scripts/pretrain.py: 2 CPU processes under torchrun train like 1 process, and --resume continues.

Each run starts Python processes (about 5 s each on a small CPU); the three runs are shared by
the tests through a module-scoped fixture.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "pretrain.py"
STEPS = 10  # the training text gives 9 steps per epoch, so the runs cross an epoch boundary
TINY_RUN = ["--context-length", "16", "--emb-dim", "16", "--n-layers", "2", "--n-heads", "2",
            "--drop-rate", "0.0", "--batch-size", "4", "--steps", str(STEPS), "--lr", "1e-2",
            "--warmup-steps", "2", "--min-lr", "1e-3", "--max-grad-norm", "1.0",
            "--eval-every", "0", "--log-every", "1", "--seed", "7"]


def story():
    """About 600 GPT-2 tokens of plain, varied text."""
    animals = ["cat", "dog", "heron", "fox", "otter", "crow", "mole", "hare"]
    places = ["garden", "river", "attic", "meadow", "harbor", "orchard"]
    lines = [f"On day {i}, the {animals[i % 8]} walked to the {places[i % 6]} and found {i * 7 % 13} stones."
             for i in range(40)]
    return "\n".join(lines)


def run(args, tmp_path, nproc=1):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        command = [sys.executable, str(SCRIPT)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={nproc}", str(SCRIPT)]
    result = subprocess.run(command + ["--text", str(tmp_path / "story.txt")] + TINY_RUN + args,
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def losses(log_file):
    return {entry["step"]: entry["loss"] for entry in map(json.loads, log_file.read_text().splitlines())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pretrain")
    (tmp_path / "story.txt").write_text(story())
    # One process accumulating 2 micro-batches of 2 sequences, two processes with 2 sequences each.
    single = run(["--out", "single.pth", "--log-file", "single.jsonl", "--accumulation-steps", "2"], tmp_path)
    first = run(["--out", "ddp.pth", "--log-file", "ddp.jsonl", "--stop-after", "4"], tmp_path, nproc=2)
    after_first = torch.load(tmp_path / "ddp.pth", weights_only=True)
    resumed = run(["--out", "ddp.pth", "--log-file", "ddp.jsonl", "--resume"], tmp_path, nproc=2)
    return {"dir": tmp_path, "single": single, "first": first, "resumed": resumed,
            "after_first": after_first}


def test_two_processes_split_each_batch(runs):
    assert "1 process(es)" in runs["single"] and "batch 4 = 1 x 2 x 2 sequences" in runs["single"]
    assert "2 process(es)" in runs["first"] and "batch 4 = 2 x 1 x 2 sequences" in runs["first"]
    assert "9 steps per epoch" in runs["first"]


def test_two_processes_give_the_losses_of_one(runs):
    single = losses(runs["dir"] / "single.jsonl")
    ddp = losses(runs["dir"] / "ddp.jsonl")
    assert sorted(single) == sorted(ddp) == list(range(1, STEPS + 1))
    assert single[STEPS] < single[1] - 0.5  # it learns
    for step in single:
        assert ddp[step] == pytest.approx(single[step], abs=1e-5), f"step {step}"


def test_resume_continues_from_the_saved_step(runs):
    assert runs["after_first"]["step"] == 4
    assert "saved ddp.pth at step 4" in runs["first"]
    assert "resuming from ddp.pth at step 4" in runs["resumed"]
    assert "step      5/10" in runs["resumed"] and "step      4/10" not in runs["resumed"]
    final = torch.load(runs["dir"] / "ddp.pth", weights_only=True)
    single = torch.load(runs["dir"] / "single.pth", weights_only=True)
    assert final["step"] == single["step"] == STEPS
    assert set(final) >= {"config", "model_state_dict", "optimizer_state_dict"}
    for name, tensor in single["model_state_dict"].items():
        assert torch.allclose(final["model_state_dict"][name], tensor, atol=1e-5), name
