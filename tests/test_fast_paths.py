"""Tests for the fast paths: fused attention (ch03), the KV cache and the training options (appendix D)."""

import re
from functools import partial

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from scripts.bench import random_openai_params  # the benchmark's random GPT-2 weights
import tiny_models
from previous_chapters import (
    GPTModel,
    KVCache,
    MultiHeadAttention,
    accumulation_groups,
    build_gpt_from_params,
    choose_device,
    cosine_lr,
    forward_with_cache,
    generate,
    generate_cached,
    gradient_norm,
    load_weights_into_gpt,
    make_optimizer,
    train_model,
    train_model_simple,
)

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine waiting for it
    can cost more than the computation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# The cache tests reason about a context of 16; OpenAI's weights (random_openai_params) have
# query, key and value biases.
TINY = tiny_models.tiny_config(context_length=16, qkv_bias=True)
tiny_model = partial(tiny_models.tiny_model, TINY)


def prompt(num_tokens, batch_size=1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, TINY["vocab_size"], (batch_size, num_tokens), generator=generator)


# ---------------------------------------------------------------- fused attention (ch03)

@pytest.mark.parametrize("num_tokens", [1, 5, 16])
def test_sdpa_matches_written_out_attention(num_tokens):
    torch.manual_seed(123)
    mha = MultiHeadAttention(32, 32, 16, dropout=0.3, num_heads=4, qkv_bias=True).eval()
    x = torch.randn(3, num_tokens, 32)
    assert mha.use_sdpa  # the default
    with torch.no_grad():
        fused = mha(x)
        mha.use_sdpa = False
        written_out = mha(x)
    assert fused.shape == (3, num_tokens, 32)
    assert torch.allclose(fused, written_out, atol=1e-5)
    assert (fused - written_out).abs().max() < 1e-5


def test_sdpa_gradients_match_written_out_without_dropout():
    torch.manual_seed(123)
    mha = MultiHeadAttention(32, 32, 16, dropout=0.0, num_heads=4).train()
    x = torch.randn(2, 7, 32)
    grads = []
    for use_sdpa in (True, False):
        mha.use_sdpa = use_sdpa
        mha.zero_grad()
        mha(x).square().sum().backward()
        grads.append(mha.W_query.weight.grad.clone())
    assert grads[0].abs().max() > 1e-3
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_sdpa_applies_dropout_only_in_training():
    torch.manual_seed(123)
    mha = MultiHeadAttention(32, 32, 16, dropout=0.5, num_heads=4).train()
    x = torch.randn(2, 7, 32)
    assert not torch.allclose(mha(x), mha(x))
    mha.eval()
    assert torch.equal(mha(x), mha(x))


# ---------------------------------------------------------------- KV cache (ch05)

def test_forward_with_cache_matches_the_model_chunk_by_chunk():
    model = tiny_model()
    idx = prompt(12, batch_size=2)
    with torch.no_grad():
        expected = model(idx)  # (2, 12, vocab_size)
        cache = KVCache(TINY["n_layers"], max_tokens=12)
        chunks = [forward_with_cache(model, idx[:, a:b], cache) for a, b in ((0, 3), (3, 4), (4, 9), (9, 12))]
    assert cache.num_tokens == 12
    assert torch.allclose(torch.cat(chunks, dim=1), expected, atol=1e-5)


@pytest.mark.parametrize("prompt_len,max_new_tokens,context_size", [
    (4, 8, 16),    # stays inside the cache
    (5, 30, 16),   # runs past the model's context length
    (3, 20, 10),   # a context_size below the model's
    (14, 6, 10),   # a prompt longer than context_size
])
def test_cached_greedy_equals_uncached(prompt_len, max_new_tokens, context_size):
    model = tiny_model()
    idx = prompt(prompt_len, batch_size=2)
    expected = generate(model, idx, max_new_tokens, context_size)
    out = generate_cached(model, idx, max_new_tokens, context_size)
    assert out.shape == (2, prompt_len + max_new_tokens)
    assert torch.equal(out, expected)


def test_cached_sampling_equals_uncached_with_the_same_seed():
    model = tiny_model()
    idx = prompt(4, batch_size=3)
    settings = dict(max_new_tokens=25, context_size=16, temperature=1.3, top_k=20, top_p=0.9)
    torch.manual_seed(7)
    expected = generate(model, idx, **settings)
    torch.manual_seed(7)
    out = generate_cached(model, idx, **settings)
    assert torch.equal(out, expected)
    torch.manual_seed(8)
    assert not torch.equal(generate_cached(model, idx, **settings), expected)  # the seed matters


def test_cached_generation_stops_at_eos_like_generate():
    model = tiny_model()
    idx = prompt(4, batch_size=2)
    greedy = generate(model, idx, 10, 16)
    eos_id = int(greedy[0, 4 + 2])  # the first sequence's third new token
    expected = generate(model, idx, 10, 16, eos_id=eos_id)
    out = generate_cached(model, idx, 10, 16, eos_id=eos_id)
    assert torch.equal(out, expected)
    assert out[0, 4 + 2] == eos_id  # in a batch, a finished sequence is padded with eos_id
    single = generate_cached(model, idx[:1], 10, 16, eos_id=eos_id)
    assert torch.equal(single, generate(model, idx[:1], 10, 16, eos_id=eos_id))
    assert single.shape[1] == 4 + 2  # alone, it stops before the end token


def test_generate_cached_returns_an_ordinary_tensor():
    model = tiny_model()
    out = generate_cached(model, prompt(4), 3, 16)
    assert not out.is_inference()
    model.tok_emb(out).sum().backward()  # usable in autograd, e.g. as training data


def test_generate_cached_rejects_bad_settings():
    with pytest.raises(ValueError):
        generate_cached(tiny_model(), prompt(4), 3, 16, temperature=-1.0)


def test_kv_cache_refuses_to_overflow():
    cache = KVCache(num_layers=1, max_tokens=4)
    keys = torch.zeros(1, 2, 3, 8)  # (b, num_heads, num_new, head_dim)
    all_keys, _ = cache.update(0, keys, keys)
    assert all_keys.shape == (1, 2, 3, 8)
    cache.num_tokens = 3
    with pytest.raises(ValueError, match="at most 4"):
        cache.update(0, keys, keys)


# ---------------------------------------------------------------- lean loading

def test_build_gpt_from_params_equals_the_books_way():
    params = random_openai_params(TINY)
    book = GPTModel(TINY)
    load_weights_into_gpt(book, params)
    lean = build_gpt_from_params(TINY, params)
    assert not any(t.is_meta for t in list(lean.parameters()) + list(lean.buffers()))
    for (name, a), (_, b) in zip(book.state_dict().items(), lean.state_dict().items()):
        assert torch.equal(a, b), name
    for block in lean.trf_blocks:
        assert torch.equal(block.att.mask, book.trf_blocks[0].att.mask)
    idx = prompt(8)
    with torch.no_grad():
        assert torch.equal(lean.eval()(idx), book.eval()(idx))


# ---------------------------------------------------------------- training options (ch05)

def loader(batch_size, num_sequences=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, TINY["vocab_size"], (num_sequences, 9), generator=generator)
    return DataLoader(TensorDataset(ids[:, :-1], ids[:, 1:]), batch_size=batch_size, shuffle=False)


def test_cosine_lr_at_known_steps():
    # 111 steps: the warm-up over steps 0-9, the cosine from step 10 to the last step, 110
    kw = dict(max_lr=1e-3, total_steps=111, warmup_steps=10, min_lr=1e-4, initial_lr=1e-4)
    assert cosine_lr(0, **kw) == pytest.approx(1e-4)       # warm-up starts at initial_lr
    assert cosine_lr(5, **kw) == pytest.approx(5.5e-4)     # halfway up
    assert cosine_lr(10, **kw) == pytest.approx(1e-3)      # the cosine starts at max_lr
    assert cosine_lr(60, **kw) == pytest.approx(5.5e-4)    # halfway: the mean of max_lr and min_lr
    assert cosine_lr(109, **kw) > 1e-4 * (1 + 1e-3)        # one step before the end: not there yet
    assert cosine_lr(110, **kw) == 1e-4                    # the last step: exactly min_lr
    assert cosine_lr(500, **kw) == pytest.approx(1e-4)     # and it stays there
    assert cosine_lr(3, max_lr=2.0, total_steps=11) == pytest.approx(1.0 + np.cos(np.pi * 0.3))


def test_warm_up_follows_the_book():
    """Peak 1e-3, 3 warm-up steps from 1e-5: 1.0e-5, 3.4e-4, 6.7e-4, then 1.0e-3."""
    lrs = [cosine_lr(step, 1e-3, 100, warmup_steps=3, min_lr=1e-3, initial_lr=1e-5) for step in range(5)]
    assert lrs == pytest.approx([1e-5, 3.4e-4, 6.7e-4, 1e-3, 1e-3])
    assert cosine_lr(0, 1e-3, 100, warmup_steps=3) == pytest.approx(3e-5)  # the book's initial_lr


def test_accumulating_two_micro_batches_equals_one_double_batch():
    trained = []
    for batch_size, accumulation_steps in ((4, 1), (2, 2)):
        model = tiny_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        train_model(model, loader(batch_size, num_sequences=4), loader(4), optimizer, "cpu",
                    n_epochs=1, eval_freq=100, eval_iter=1, accumulation_steps=accumulation_steps)
        trained.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    before = torch.cat([p.detach().flatten() for p in tiny_model().parameters()])
    assert (trained[0] - before).abs().max() > 1e-3  # a real step was taken
    assert torch.allclose(trained[0], trained[1], atol=1e-6)


class DigitTokenizer:
    """Stands in for tiktoken with the tiny vocabulary: each digit is one token."""

    def encode(self, text, allowed_special=()):
        return [int(c) for c in text if c.isdigit()]

    def decode(self, ids):
        return "".join(str(i % 10) for i in ids)


def test_train_model_without_options_equals_train_model_simple(capsys):
    results, printed = [], []
    for train in (train_model_simple, train_model):
        model = tiny_model().train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        results.append(train(model, loader(2), loader(2, seed=1), optimizer, "cpu", 2,
                             eval_freq=2, eval_iter=2, start_context="123", tokenizer=DigitTokenizer()))
        printed.append(capsys.readouterr().out)
    assert len(results[0][0]) == 4
    assert results[1][3] == [1e-3] * 8  # train_model also returns every step's learning rate
    for simple, ours in zip(*results):  # train losses, val losses, tokens seen
        assert simple == pytest.approx(ours, abs=1e-6)
    samples = [[line for line in out.splitlines() if not line.startswith("Epoch")] for out in printed]
    assert len(samples[0]) == 2 and samples[0] == samples[1]  # one sample per epoch, the same text


def test_train_model_follows_the_schedule_and_restores_the_lr(capsys):
    model = tiny_model().train()
    optimizer = make_optimizer(model, lr=1e-3)
    *_, lrs = train_model(model, loader(2), loader(2), optimizer, "cpu", n_epochs=2, eval_freq=1,
                          eval_iter=1, warmup_steps=2, initial_lr=1e-5, min_lr=1e-4, max_grad_norm=1.0)
    printed = [float(x) for x in re.findall(r"lr (\S+),", capsys.readouterr().out)]
    expected = [cosine_lr(step, 1e-3, 8, 2, 1e-4, initial_lr=1e-5) for step in range(8)]
    assert lrs == pytest.approx(expected)
    assert lrs[-1] == 1e-4  # the last step trains at min_lr
    assert printed == pytest.approx(expected, rel=1e-2)  # printed with 3 significant digits
    assert optimizer.param_groups[0]["lr"] == 1e-3


def test_gradient_clipping_bounds_the_step():
    model = tiny_model().train()
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    train_model(model, loader(8), loader(8), optimizer, "cpu", n_epochs=1, eval_freq=100, eval_iter=1,
                max_grad_norm=1e-3)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert 0 < (after - before).norm() <= 1e-3 * (1 + 1e-4)


def test_accumulation_groups_drop_the_batches_left_over():
    assert list(accumulation_groups(range(9), 2)) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert list(accumulation_groups(range(3), 1)) == [[0], [1], [2]]
    assert list(accumulation_groups(range(3), 4)) == []


def test_accumulation_makes_whole_steps_in_every_epoch(capsys):
    """9 batches, 2 per optimizer step: 4 steps per epoch; the 9th batch is skipped, every epoch."""
    model = tiny_model().train()
    optimizer = make_optimizer(model, lr=1e-3)
    n_epochs, steps = 3, 3 * 4
    _, _, tokens_seen, lrs = train_model(
        model, loader(1, num_sequences=9), loader(2), optimizer, "cpu", n_epochs=n_epochs, eval_freq=1,
        eval_iter=1, warmup_steps=2, min_lr=1e-4, accumulation_steps=2)
    assert len(lrs) == steps
    assert lrs == pytest.approx([cosine_lr(step, 1e-3, steps, 2, 1e-4) for step in range(steps)])
    assert lrs[-1] == 1e-4  # the schedule ends where the steps end
    assert tokens_seen == [2 * 8 * (step + 1) for step in range(steps)]  # 2 batches of 8 tokens a step
    printed = capsys.readouterr().out
    assert printed.count("Epoch 1 ") == printed.count("Epoch 3 ") == 4


def test_gradient_norm_is_the_total_norm_of_all_gradients():
    model = tiny_model().train()
    inputs, targets = next(iter(loader(4)))
    torch.nn.functional.cross_entropy(model(inputs).flatten(0, 1), targets.flatten()).backward()
    expected = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    assert gradient_norm(model) == pytest.approx(expected, rel=1e-5)
    model.zero_grad(set_to_none=True)
    assert gradient_norm(model) == 0.0


def test_grad_norms_show_the_clipping_after_the_warm_up(capsys):
    model = tiny_model().train()
    optimizer = make_optimizer(model, lr=1e-3)
    grad_norms, max_grad_norm = [], 0.05
    train_model(model, loader(2), loader(2), optimizer, "cpu", n_epochs=2, eval_freq=100, eval_iter=1,
                warmup_steps=3, max_grad_norm=max_grad_norm, grad_norms=grad_norms)
    assert len(grad_norms) == 8
    assert all(before > max_grad_norm for before, _ in grad_norms)  # so every step is clipped after warm-up
    for step, (before, after) in enumerate(grad_norms):
        if step < 3:
            assert after == before  # the warm-up is not clipped
        else:
            assert after <= max_grad_norm * (1 + 1e-5)
            assert after == pytest.approx(max_grad_norm, rel=1e-4)


def test_train_model_bf16_runs_and_learns(capsys):
    model = tiny_model().train()
    optimizer = make_optimizer(model, lr=1e-2)
    train_losses, *_ = train_model(model, loader(2), loader(2), optimizer, "cpu", n_epochs=3,
                                     eval_freq=4, eval_iter=4, dtype=torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert np.isfinite(train_losses).all() and train_losses[-1] < train_losses[0]


def test_make_optimizer_is_adamw_fused_where_available():
    optimizer = make_optimizer(tiny_model(), lr=3e-4, weight_decay=0.05)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == 3e-4 and optimizer.defaults["weight_decay"] == 0.05
    assert optimizer.defaults["fused"]  # the CPU has a fused AdamW since PyTorch 2.4


def test_choose_device(monkeypatch):
    monkeypatch.delenv("LLM_COURSE_DEVICE", raising=False)
    assert choose_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("LLM_COURSE_DEVICE", "cpu")
    assert choose_device() == torch.device("cpu")
    assert choose_device("meta") == torch.device("meta")  # the argument beats the variable
    assert choose_device("cuda") == torch.device("cuda")  # whether this machine has one: the CLIs check
    if not torch.cuda.is_available():
        monkeypatch.delenv("LLM_COURSE_DEVICE")
        expected = "mps" if torch.backends.mps.is_available() else "cpu"
        assert choose_device() == torch.device(expected)


# ---------------------------------------------------------------- scripts/bench.py --load-only

def test_bench_load_probe_measures_both_ways_of_loading(monkeypatch, capsys):
    import json
    import scripts.bench as bench

    monkeypatch.setattr(bench, "BENCH_CONFIG", TINY)  # the probe's model, at toy size
    for kind in ("book", "lean"):
        bench.load_probe(kind)
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert set(result) == {"peak_extra_mib", "model_mib", "seconds", "seconds_again"}
        params = sum(p.numel() for p in tiny_model().parameters())
        assert result["model_mib"] * 2**20 >= params * 4  # float32 weights (and the masks)
        assert np.isfinite(result["peak_extra_mib"]) and result["seconds"] >= 0


def test_bench_load_only_needs_no_transformers(monkeypatch, capsys):
    import sys
    import scripts.bench as bench

    fake = {"peak_extra_mib": 1.0, "model_mib": 2.0, "seconds": 0.5, "seconds_again": 0.25}
    monkeypatch.setattr(bench, "measure_loading", lambda threads: {"book": fake, "lean": fake})
    monkeypatch.setattr(sys, "argv", ["bench.py", "--load-only"])
    monkeypatch.setitem(sys.modules, "transformers", None)  # importing it would fail
    bench.main()
    printed = capsys.readouterr().out
    assert "GPTModel(cfg) + load_weights_into_gpt" in printed and "build_gpt_from_params" in printed
