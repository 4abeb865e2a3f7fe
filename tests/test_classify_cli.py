"""scripts/classify.py end to end, on a tiny classifier saved in the course's format."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from previous_chapters import GPTModel, add_classification_head, save_gpt_checkpoint
from tiny_models import TINY_GPT2_VOCAB

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "classify.py"
SPAM_P = f"{1 / (1 + math.exp(-2.0)):.3f}"  # the head's scores are always (0, 2)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A classifier that calls everything spam, reading at most 12 tokens."""
    torch.manual_seed(123)
    model = add_classification_head(GPTModel(TINY_GPT2_VOCAB), num_classes=2)
    with torch.no_grad():
        model.out_head.weight.zero_()
        model.out_head.bias.copy_(torch.tensor([0.0, 2.0]))
    path = tmp_path_factory.mktemp("ckpt") / "tiny_classifier.pth"
    save_gpt_checkpoint(path, model, {**TINY_GPT2_VOCAB, "num_classes": 2, "max_length": 12})
    return path


def run(*args, stdin=""):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("classify.py: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.needs_data
def test_messages_as_arguments(ckpt):
    result = run("--ckpt", ckpt, "Free entry! Text WIN now", "see you at 8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"spam\t{SPAM_P}\tFree entry! Text WIN now",
                                          f"spam\t{SPAM_P}\tsee you at 8"]
    assert result.stderr == ""


@pytest.mark.needs_data
def test_messages_from_stdin_skip_empty_lines_and_note_truncation(ckpt):
    long_message = "one two three four five six seven eight nine ten eleven twelve thirteen"
    result = run("--ckpt", ckpt, stdin=f"hello there\n\n{long_message}\n")
    assert result.returncode == 2  # a line was rejected; the others were classified
    assert result.stdout.splitlines() == [f"spam\t{SPAM_P}\thello there",
                                          f"spam\t{SPAM_P}\t{long_message}"]
    assert "Traceback" not in result.stderr
    assert "line 2 is empty" in result.stderr
    assert "note: line 3 has 13 tokens; the classifier reads only the first 12" in result.stderr


def test_empty_message_argument(ckpt):
    assert_one_line_error(run("--ckpt", ckpt, "fine", "  "), "message 2 is empty")


def test_missing_checkpoint(tmp_path):
    missing = tmp_path / "nowhere.pth"
    assert_one_line_error(run("--ckpt", missing, "hello"), "not found", str(missing))


def test_mismatched_checkpoints(tmp_path):
    language_model = tmp_path / "language_model.pth"
    save_gpt_checkpoint(language_model, GPTModel(TINY_GPT2_VOCAB), TINY_GPT2_VOCAB)
    assert_one_line_error(run("--ckpt", language_model, "hello"),
                          str(language_model), "language model, not a classifier")

    torch.manual_seed(123)
    classifier = add_classification_head(GPTModel(TINY_GPT2_VOCAB), num_classes=2)
    wrong_config = tmp_path / "wrong_config.pth"
    save_gpt_checkpoint(wrong_config, classifier, {**TINY_GPT2_VOCAB, "num_classes": 2,
                                                   "n_layers": TINY_GPT2_VOCAB["n_layers"] + 1})
    assert_one_line_error(run("--ckpt", wrong_config, "hello"), str(wrong_config), "do not fit")

    not_a_checkpoint = tmp_path / "notes.pth"
    not_a_checkpoint.write_text("just some text\n")
    assert_one_line_error(run("--ckpt", not_a_checkpoint, "hello"), str(not_a_checkpoint))


@pytest.mark.needs_data
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_interactive_prompt(ckpt):
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the script, with the terminal as its standard input
        os.execv(sys.executable, [sys.executable, str(SCRIPT), "--ckpt", str(ckpt)])
    transcript = b""

    def read_until_prompt(timeout=60):
        """Read until one more prompt has appeared, or the child has ended."""
        nonlocal transcript
        prompts = transcript.count(b"message> ")
        deadline = time.time() + timeout
        while time.time() < deadline and transcript.count(b"message> ") == prompts:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    transcript += os.read(fd, 4096)
                except OSError:  # the child has gone
                    return

    try:
        read_until_prompt()
        os.write(fd, b"Call now for your prize\n")
        read_until_prompt()
        os.write(fd, b"  \n")
        read_until_prompt()
        os.write(fd, b"exit\n")
        read_until_prompt(timeout=10)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = transcript.decode().replace("\r\n", "\n")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert f"spam\t{SPAM_P}\tCall now for your prize" in text
    assert "the message is empty" in text
    assert "Traceback" not in text
