"""choose_dtype and autocast: bfloat16 only where it is fast, and the same lessons in it."""

import contextlib
import io
import time

import pytest
import torch

import previous_chapters
import tiny_models
from gpt_download import download_data_file
from previous_chapters import (GPTModel, autocast, choose_dtype, create_dataloader_v1, gpt2_tokenizer,
                               model_for_answers, train_model_simple)


def test_the_variable_decides_when_set(monkeypatch):
    monkeypatch.setattr(previous_chapters, "bf16_speedup", lambda device_type: 10.0)
    monkeypatch.setenv("LLM_COURSE_DTYPE", "float32")
    assert choose_dtype("cpu") == torch.float32
    monkeypatch.setattr(previous_chapters, "bf16_speedup", lambda device_type: 0.1)
    monkeypatch.setenv("LLM_COURSE_DTYPE", "bfloat16")
    assert choose_dtype("cpu") == torch.bfloat16
    monkeypatch.setenv("LLM_COURSE_DTYPE", "float16")
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        choose_dtype("cpu")


@pytest.mark.parametrize("speedup, expected", [(4.2, torch.bfloat16), (1.2, torch.float32),
                                               (0.02, torch.float32), (0.0, torch.float32)])
def test_without_the_variable_the_measurement_decides(monkeypatch, speedup, expected):
    monkeypatch.delenv("LLM_COURSE_DTYPE", raising=False)
    measured = []
    monkeypatch.setattr(previous_chapters, "bf16_speedup",
                        lambda device_type: measured.append(device_type) or speedup)
    assert choose_dtype(torch.device("cpu")) == expected
    assert measured == ["cpu"]


def test_the_measurement_is_the_fastest_float32_round_over_the_fastest_bfloat16_round(
        monkeypatch):
    # five alternating rounds (float32, bfloat16), some slowed as by another busy program:
    # the fastest are 3 s and 1 s, while the first round alone would give 2x
    rounds = [(3.0, 1.5), (9.0, 1.0), (3.5, 4.0), (6.0, 1.2), (4.0, 2.0)]
    readings, now = [], 0.0
    for duration in (d for pair in rounds for d in pair):
        readings += [now, now + duration]
        now += duration + 1.0
    real_clock = time.perf_counter
    monkeypatch.setattr(time, "perf_counter", lambda: readings.pop(0) if readings else real_clock())
    previous_chapters.bf16_speedup.cache_clear()
    try:
        assert previous_chapters.bf16_speedup("cpu") == 3.0
        assert not readings
    finally:
        previous_chapters.bf16_speedup.cache_clear()


def test_the_measurement_is_made_once_per_process():
    speedup = previous_chapters.bf16_speedup("cpu")
    assert speedup > 0
    assert previous_chapters.bf16_speedup("cpu") == speedup


def test_autocast_computes_matrix_products_in_bfloat16_only_when_asked():
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with autocast("cpu", torch.float32):
        assert layer(x).dtype == torch.float32
    with autocast("cpu", torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
    assert layer.weight.dtype == torch.float32


def test_a_loop_inside_autocast_sees_every_weight_update():
    # PyTorch's default would reuse the first bfloat16 copy of each weight until the context ends.
    model = tiny_models.tiny_model(tiny_models.TINY)
    x = torch.randint(0, tiny_models.TINY["vocab_size"], (2, 8))
    with autocast("cpu", torch.bfloat16):
        before = model(x)
        with torch.no_grad():
            model.out_head.weight.mul_(2.0)
        after = model(x)
    assert not torch.equal(before, after)


def test_gradients_are_the_same_with_backward_inside_or_outside_the_context():
    model = tiny_models.tiny_model(tiny_models.TINY)
    x = torch.randint(0, tiny_models.TINY["vocab_size"], (2, 8))

    def gradients(backward_inside):
        model.zero_grad()
        with autocast("cpu", torch.bfloat16):
            loss = model(x).float().logsumexp(-1).mean()
            if backward_inside:
                loss.backward()
        if not backward_inside:
            loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    for inside, outside in zip(gradients(True), gradients(False)):
        assert inside.dtype == torch.float32
        assert torch.equal(inside, outside)


@pytest.mark.slow  # bfloat16 is slow on CPUs without bfloat16 instructions
@pytest.mark.needs_data
def test_bfloat16_training_learns_what_float32_learns():
    """Chapter 5's loop on the story, a small model, the same seed, float32 then bfloat16."""
    cfg = tiny_models.tiny_config(vocab_size=50257, context_length=32, emb_dim=64, n_heads=4)
    text = download_data_file("the-verdict.txt").read_text(encoding="utf-8")[:6000]
    tokenizer = gpt2_tokenizer()

    def losses(dtype):
        torch.manual_seed(123)
        model = GPTModel(cfg)
        loader = create_dataloader_v1(text, batch_size=4, max_length=32, stride=32, shuffle=True,
                                      drop_last=True, num_workers=0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        with contextlib.redirect_stdout(io.StringIO()), autocast("cpu", dtype):
            train, val, _ = train_model_simple(model, loader, loader, optimizer, "cpu", num_epochs=1,
                                               eval_freq=2, eval_iter=2, start_context="Every effort",
                                               tokenizer=tokenizer)
        return train + val

    float32, bfloat16 = losses(torch.float32), losses(torch.bfloat16)
    assert float32[5] < float32[0] - 0.3  # it learns: the loss falls by tenths in 11 steps
    # bfloat16 rounds each product to about three digits; the losses agree far closer than
    # the tenths by which they fall (a model stuck on stale weights is off by about 0.4).
    assert max(abs(a - b) for a, b in zip(float32, bfloat16)) < 0.01


def test_answers_use_bfloat16_weights_only_in_a_copy():
    model = tiny_models.tiny_model(tiny_models.TINY)
    assert model_for_answers(model, torch.float32) is model
    copy = model_for_answers(model, torch.bfloat16)
    assert {p.dtype for p in copy.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the trained weights stay
    x = torch.randint(0, tiny_models.TINY["vocab_size"], (1, 8))
    with torch.no_grad():
        assert torch.allclose(copy(x).float(), model(x), atol=0.1)
