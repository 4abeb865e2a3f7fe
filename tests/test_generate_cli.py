"""scripts/generate.py: runs on a tiny checkpoint saved here, and fails clearly on bad input."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from previous_chapters import GPTModel, save_gpt_checkpoint
from tiny_models import TINY_GPT2_VOCAB  # the GPT-2 vocabulary: the script uses tiktoken's

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "generate.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_gpt_checkpoint(path, GPTModel(TINY_GPT2_VOCAB), TINY_GPT2_VOCAB)
    return path


def test_help_shows_an_example():
    result = run("--help")
    assert result.returncode == 0
    assert "--prompt" in result.stdout and "--ckpt" in result.stdout
    assert "python scripts/generate.py" in result.stdout


@pytest.mark.needs_data
def test_generates_from_a_checkpoint(tiny_checkpoint):
    result = run("--ckpt", tiny_checkpoint, "--prompt", "The quick brown fox", "--tokens", 20,
                 "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("The quick brown fox")
    assert len(result.stdout.strip()) > len("The quick brown fox")


@pytest.mark.needs_data
def test_sampling_is_repeatable_with_the_same_seed(tiny_checkpoint):
    args = ("--ckpt", tiny_checkpoint, "--prompt", "Once", "--tokens", 8, "--temperature", 1.0,
            "--top_k", 40, "--top_p", 0.95, "--seed", 7, "--device", "cpu")
    first, second = run(*args), run(*args)
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_a_usage_error(prompt, tiny_checkpoint):
    result = run("--ckpt", tiny_checkpoint, "--prompt", prompt)
    assert result.returncode == 2
    assert "--prompt is empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_checkpoint_names_the_file(tmp_path):
    missing = tmp_path / "no_such_model.pth"
    result = run("--ckpt", missing, "--prompt", "Hello")
    assert result.returncode == 2
    assert "no_such_model.pth" in result.stderr and "not found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.needs_data
def test_checkpoint_that_does_not_fit_its_config(tiny_checkpoint, tmp_path):
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    blocks = TINY_GPT2_VOCAB["n_layers"]  # the weights hold trf_blocks.0 to blocks - 1
    checkpoint["config"] = {**TINY_GPT2_VOCAB, "n_layers": blocks + 1}
    wrong = tmp_path / "wrong.pth"
    torch.save(checkpoint, wrong)
    result = run("--ckpt", wrong, "--prompt", "Hello", "--device", "cpu")
    assert result.returncode == 2
    assert "do not fit" in result.stderr and f"trf_blocks.{blocks}" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_sampling_settings_are_usage_errors(tiny_checkpoint):
    result = run("--ckpt", tiny_checkpoint, "--prompt", "Hello", "--top_p", 1.5)
    assert result.returncode == 2
    assert "--top_p" in result.stderr
