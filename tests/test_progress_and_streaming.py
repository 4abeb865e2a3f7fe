"""Progress bars, streamed generation in the CLIs, and the offline tokenizer error."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import tiny_models
from previous_chapters import (calc_loss_loader,
                               generate, generate_cached, generate_response, generate_stream,
                               gpt2_tokenizer, progress, save_gpt_checkpoint, text_to_token_ids,
                               token_ids_to_text)

from scripts import chat
from scripts import generate as generate_cli

ROOT = Path(__file__).resolve().parent.parent

# The real tokenizer feeds it; the cases below run past a context of 16.
TINY = {**tiny_models.TINY_GPT2_VOCAB, "context_length": 16}


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_models.tiny_model(TINY, seed=123)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_model):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_gpt_checkpoint(path, tiny_model, TINY)
    return path


@pytest.mark.parametrize("eos_id", [None, 0])
def test_streamed_tokens_are_generates_tokens(tiny_model, eos_id):
    torch.manual_seed(0)
    idx = torch.randint(0, 50257, (2, 5))  # (batch_size, num_tokens)
    # 30 new tokens run past the context of 16, where the cache is recomputed
    expected = generate(tiny_model, idx, 30, 16, eos_id=eos_id)
    streamed = torch.cat([idx, *generate_stream(tiny_model, idx, 30, 16, eos_id=eos_id)], dim=1)
    assert torch.equal(streamed, expected)
    assert torch.equal(generate_cached(tiny_model, idx, 30, 16, eos_id=eos_id), expected)


def test_stream_stops_before_the_end_token(tiny_model):
    idx = torch.tensor([[10, 20, 30]])
    first = next(generate_stream(tiny_model, idx, 5, 16))
    eos = int(first[0, 0])  # make the first greedy token the end token: nothing is yielded
    assert list(generate_stream(tiny_model, idx, 5, 16, eos_id=eos)) == []
    assert torch.equal(generate(tiny_model, idx, 5, 16, eos_id=eos), idx)


def test_caller_code_between_tokens_is_not_in_inference_mode(tiny_model):
    for _ in generate_stream(tiny_model, torch.tensor([[1, 2]]), 2, 16):
        assert not torch.is_inference_mode_enabled()


@pytest.mark.needs_data
def test_generate_cli_prints_what_generate_makes(tiny_model, tiny_checkpoint, capsys):
    prompt = "Every effort moves you"
    tokenizer = gpt2_tokenizer()
    expected = token_ids_to_text(generate(tiny_model, text_to_token_ids(prompt, tokenizer), 12, 16)[0],
                                 tokenizer)
    code = generate_cli.main(["--ckpt", str(tiny_checkpoint), "--prompt", prompt, "--tokens", "12",
                              "--device", "cpu"])
    assert code == 0
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.needs_data
def test_stream_text_holds_back_a_split_character():
    tokenizer = gpt2_tokenizer()
    # "日" is three bytes spread over two tokens: decoded one token at a time it would be garbled
    assert "\ufffd" in tokenizer.decode_single_token_bytes(tokenizer.encode("日")[0]).decode(errors="replace")
    tokens = [torch.tensor([[i]]) for i in tokenizer.encode("naïve 日本")]
    texts = list(generate_cli.stream_text(tokens, tokenizer))
    assert "".join(texts) == "naïve 日本" and "\ufffd" not in "".join(texts)


@pytest.mark.needs_data
def test_chat_ask_prints_generate_responses_answer(tiny_model, tiny_checkpoint, capsys):
    tokenizer = gpt2_tokenizer()
    entry = {"instruction": "Name a colour.", "input": ""}
    expected = generate_response(tiny_model, tokenizer, entry, max_new_tokens=10)
    code = chat.main(["--ckpt", str(tiny_checkpoint), "--ask", entry["instruction"],
                      "--tokens", "10", "--device", "cpu"])
    assert code == 0
    assert capsys.readouterr().out == (expected or "(empty response)") + "\n"


def test_progress_is_silent_for_quick_loops_and_draws_a_bar_for_slow_ones(capsys):
    assert list(progress(range(5), "quick")) == list(range(5))
    assert list(progress(range(5), "first three", total=3)) == [0, 1, 2]
    assert capsys.readouterr().err == ""

    def slow():
        for i in range(4):
            time.sleep(1.2)
            yield i

    assert list(progress(slow(), "slow", total=4, leave=True)) == [0, 1, 2, 3]
    assert "slow: 100%" in capsys.readouterr().err


def test_no_bar_inside_a_loop_that_has_one(monkeypatch, capsys):
    import previous_chapters
    monkeypatch.setattr(previous_chapters, "PROGRESS_DELAY_S", 0)
    for _ in progress(range(2), "outer", leave=True):
        for _ in progress(range(3), "inner"):
            pass
    err = capsys.readouterr().err
    assert "outer" in err and "inner" not in err


def test_calc_loss_loader_still_averages_the_first_batches(tiny_model):
    batches = [(torch.randint(0, 100, (2, 4)), torch.randint(0, 100, (2, 4))) for _ in range(3)]
    from previous_chapters import calc_loss_batch
    losses = [calc_loss_batch(x, y, tiny_model, "cpu").item() for x, y in batches]
    assert calc_loss_loader(batches, tiny_model, "cpu", num_batches=2) == pytest.approx(
        sum(losses[:2]) / 2)


def test_offline_tokenizer_failure_is_one_line_naming_the_cache(tmp_path):
    # An empty cache and a proxy that refuses every connection: tiktoken must download and can't.
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path)}
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env[name] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None), env.pop("no_proxy", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate.py"), "--prompt", "Hi", "--device", "cpu"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "TIKTOKEN_CACHE_DIR" in lines[0] and "tools/mirror.py tiktoken-cache" in lines[0]


@pytest.mark.slow
@pytest.mark.needs_data
def test_checkpoint_maker_finds_the_tokenizer_files_from_another_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_gpt2_checkpoint.py"), "out", "--tiny"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "gpt2" / "124M" / "vocab.bpe").is_file()
