"""End-to-end tests of scripts/chat.py on a tiny checkpoint made here (no downloads)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from previous_chapters import GPTModel, save_gpt_checkpoint
from tiny_models import TINY_GPT2_VOCAB

pytestmark = pytest.mark.slow

CHAT = Path(__file__).resolve().parent.parent / "scripts" / "chat.py"


def run_chat(*args, cwd):
    return subprocess.run([sys.executable, str(CHAT), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("ckpt") / "tiny-sft.pth"
    save_gpt_checkpoint(path, GPTModel(TINY_GPT2_VOCAB), TINY_GPT2_VOCAB)
    return path


@pytest.mark.needs_data
def test_ask_prints_a_response(tiny_ckpt, tmp_path):
    result = run_chat("--ckpt", tiny_ckpt, "--ask", "Name a color.", "--tokens", "4",
                      "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "### Response:" not in result.stdout  # only the answer, not the prompt


def test_empty_instruction_exits_2(tiny_ckpt, tmp_path):
    result = run_chat("--ckpt", tiny_ckpt, "--ask", "   ", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--ask" in lines[0] and "empty" in lines[0]


def test_missing_checkpoint_exits_2_naming_the_file(tmp_path):
    missing = tmp_path / "no-such-model.pth"
    result = run_chat("--ckpt", missing, "--ask", "Hi", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not found" in lines[0] and str(missing) in lines[0]


@pytest.mark.needs_data
def test_gen_test_set_writes_responses(tiny_ckpt, tmp_path):
    data = [{"instruction": f"Repeat the number {i}.", "input": str(i) if i % 2 else "",
             "output": f"{i}"} for i in range(20)]
    data_path = tmp_path / "tiny-instructions.json"
    data_path.write_text(json.dumps(data), encoding="utf-8")
    out_path = tmp_path / "out" / "responses.json"
    result = run_chat("--ckpt", tiny_ckpt, "--gen-test-set", "--data", data_path,
                      "--out", out_path, "--tokens", "3", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = json.loads(out_path.read_text(encoding="utf-8"))
    # The test split of 20 entries is entries 17 and 18 (85% train, then 10% test).
    assert [e["instruction"] for e in written] == ["Repeat the number 17.", "Repeat the number 18."]
    assert all(isinstance(e["model_response"], str) for e in written)
    assert all(e["output"] == data[17 + i]["output"] for i, e in enumerate(written))
