"""Issue 13: the scripts end every bad input in one line (exit 2), Ctrl-C in 130, and never
show a traceback: closed or non-UTF-8 stdin, a closed pipe, a full disk, a nan loss."""

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scripts import chat
from scripts import generate
from scripts import pretrain
from previous_chapters import GPTModel, add_classification_head, save_gpt_checkpoint
from tiny_models import TINY_GPT2_VOCAB

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"

pytestmark = pytest.mark.slow

TEXT = " ".join(f"Word number {i} goes here, and then a few more words follow." for i in range(60))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    save_gpt_checkpoint(folder / "lm.pth", GPTModel(TINY_GPT2_VOCAB), TINY_GPT2_VOCAB)
    classifier = add_classification_head(GPTModel(TINY_GPT2_VOCAB), 2)
    save_gpt_checkpoint(folder / "clf.pth", classifier,
                        {**TINY_GPT2_VOCAB, "num_classes": 2, "max_length": 8})
    return folder


def script(name, *args, **kwargs):
    return subprocess.Popen([sys.executable, str(SCRIPTS / name), *map(str, args)], cwd=ROOT,
                            stdout=kwargs.pop("stdout", subprocess.PIPE),
                            stderr=subprocess.PIPE, **kwargs)


def one_line_error(stderr, prog):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), stderr
    return lines[0]


# ---------------------------------------------------------------------------
# generate.py and chat.py (checked before any model is loaded: in this process)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", ["nan", "inf", "1e-45"])
def test_generate_refuses_an_unusable_temperature(checkpoints, capsys, temperature):
    code = generate.main(["--ckpt", str(checkpoints / "lm.pth"), "--prompt", "Hi",
                          "--temperature", temperature, "--device", "cpu"])
    assert code == 2
    assert "--temperature" in one_line_error(capsys.readouterr().err, "generate.py")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_device_this_machine_lacks_is_a_usage_error(checkpoints, capsys):
    code = generate.main(["--ckpt", str(checkpoints / "lm.pth"), "--prompt", "Hi", "--device", "cuda"])
    assert code == 2
    error = one_line_error(capsys.readouterr().err, "generate.py")
    assert "unusable --device 'cuda'" in error and "no CUDA GPU" in error


@pytest.mark.needs_data
def test_generate_reports_a_damaged_download_in_one_line(monkeypatch, capsys, tmp_path):
    import gpt_download

    def damaged(*args, **kwargs):
        raise gpt_download.CheckpointError("models/124M/model.ckpt.data-00000-of-00001 is "
                                           "damaged.\nDelete it and download it again.")

    monkeypatch.setattr(gpt_download, "download_and_load_gpt2", damaged)
    code = generate.main(["--prompt", "Hi", "--models-dir", str(tmp_path), "--device", "cpu"])
    assert code == 1
    assert "is damaged. Delete it" in one_line_error(capsys.readouterr().err, "generate.py")


def test_chat_checks_out_before_generating_anything(checkpoints, tmp_path, capsys):
    data = tmp_path / "data.json"
    data.write_text('[{"instruction": "Say hi.", "input": "", "output": "Hi."}]')
    code = chat.main(["--ckpt", str(checkpoints / "lm.pth"), "--gen-test-set", "--data", str(data),
                      "--out", "/dev/null/responses.json", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot write --out /dev/null/responses.json" in one_line_error(err, "chat.py")
    assert "answered" not in err  # nothing was generated, so no work was lost


@pytest.mark.needs_data
def test_generate_to_a_full_disk(checkpoints, capsys, monkeypatch):
    with open("/dev/full", "w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        code = generate.main(["--ckpt", str(checkpoints / "lm.pth"), "--prompt", "Hi",
                              "--tokens", "3", "--device", "cpu"])
    assert code == 1
    assert "No space left on device" in one_line_error(capsys.readouterr().err, "generate.py")


# ---------------------------------------------------------------------------
# classify.py: standard input closed, not UTF-8, a closed pipe, Ctrl-C
# ---------------------------------------------------------------------------

def test_classify_with_standard_input_closed(checkpoints):
    run = script("classify.py", "--ckpt", checkpoints / "clf.pth", "--device", "cpu",
                 stdin=subprocess.DEVNULL, text=True, preexec_fn=lambda: os.close(0))
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 2
    assert "standard input is closed" in one_line_error(stderr, "classify.py")


@pytest.mark.needs_data
def test_classify_skips_a_line_that_is_not_utf8_and_stops_quietly_at_a_closed_pipe(
        checkpoints, capsys, monkeypatch):
    from scripts import classify

    lines = b"caf\xe9 au lait\nfirst message\nsecond message\n" * 200
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines), encoding="utf-8",
                                                       errors="strict"))
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -1` having exited
    with open(write_end, "w") as closed_pipe:
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        code = classify.main(["--ckpt", str(checkpoints / "clf.pth"), "--device", "cpu"])
    assert code == 141
    # Only the bad line is reported; the closed pipe ends the run without a word.
    assert "line 1 is not UTF-8 text" in one_line_error(capsys.readouterr().err, "classify.py")


@pytest.mark.needs_data
def test_classify_ctrl_c_exits_130_without_a_traceback(checkpoints):
    run = script("classify.py", "--ckpt", checkpoints / "clf.pth", "--device", "cpu",
                 stdin=subprocess.PIPE)
    run.stdin.write(b"first message\n")
    run.stdin.flush()
    assert run.stdout.readline().endswith(b"first message\n")  # loaded and working
    run.send_signal(signal.SIGINT)
    run.wait(timeout=120)
    stderr = run.stderr.read().decode()
    for stream in (run.stdin, run.stdout, run.stderr):
        stream.close()
    assert run.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr


# ---------------------------------------------------------------------------
# pretrain.py: bad arguments before training, a nan loss saves nothing
# ---------------------------------------------------------------------------

@pytest.fixture
def pretrain_args(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    return ["--text", str(text), "--out", str(tmp_path / "model.pth"), "--context-length", "8",
            "--emb-dim", "8", "--n-layers", "1", "--n-heads", "2", "--batch-size", "2",
            "--steps", "2", "--device", "cpu", "--eval-every", "0"]


@pytest.mark.parametrize("bad, message", [
    (["--val-fraction", "1.5"], "--val-fraction must be from 0"),
    (["--log-every", "0"], "--log-every must be at least 1"),
    (["--eval-batches", "0"], "--eval-batches must be at least 1"),
    (["--n-heads", "3"], "not divisible by --n-heads 3"),
    (["--lr", "nan"], "--lr must be a number above 0"),
    (["--text", "/nonexistent/story.txt"], "no such file"),
])
def test_pretrain_refuses_bad_arguments_before_training(pretrain_args, capsys, bad, message):
    with pytest.raises(SystemExit) as exit_:
        pretrain.main(pretrain_args + bad)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not Path(pretrain_args[pretrain_args.index("--out") + 1]).exists()


@pytest.mark.needs_data
def test_pretrain_stops_at_a_nan_loss_and_saves_nothing(pretrain_args, capsys, monkeypatch):
    out = Path(pretrain_args[pretrain_args.index("--out") + 1])
    assert pretrain.main(pretrain_args) == 0  # trains and saves...
    assert torch.load(out, weights_only=True)["step"] == 2
    out.unlink()
    real_loss = pretrain.calc_loss_batch

    def nan_loss(*args):
        return real_loss(*args) * float("nan")

    monkeypatch.setattr(pretrain, "calc_loss_batch", nan_loss)
    capsys.readouterr()
    code = pretrain.main(pretrain_args)  # ...but not when the loss is nan
    assert code == 1
    line = one_line_error(capsys.readouterr().err, "pretrain.py")
    assert "loss became nan at step 1" in line
    assert not out.exists()
