"""Chapter 5: losses, the training loop, decoding, checkpoints, and loading OpenAI's weights.

Parity with Hugging Face's GPT-2 on loaded weights is tests/test_load_weights.py; the
checkpoint readers are tests/test_checkpoint_reader.py.
"""

import math
import re
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import gpt_download
import tiny_models
from char_tokenizer import CharTokenizer
from previous_chapters import (
    MIN_TEMPERATURE,
    MODEL_CONFIGS,
    GPTModel,
    assign,
    calc_loss_batch,
    calc_loss_loader,
    generate,
    generate_cached,
    generate_stream,
    generate_text_simple,
    gpt2_config,
    gpt2_model_size,
    load_gpt_checkpoint,
    load_weights_into_gpt,
    quick_run,
    run_size,
    save_gpt_checkpoint,
    text_to_token_ids,
    token_ids_to_text,
    train_model_simple,
)

# CharTokenizer's vocabulary; the decoding tests generate past a context of 12; the loader
# tests quote the shapes of emb_dim 16 and 2 blocks, and need a model without q/k/v biases.
TINY_CONFIG = tiny_models.tiny_config(vocab_size=len(CharTokenizer.alphabet), context_length=12,
                                      emb_dim=16, n_layers=2, qkv_bias=False)
tiny_model = partial(tiny_models.tiny_model, TINY_CONFIG)


# ---------------------------------------------------------------------------
# Quick mode and text <-> token IDs
# ---------------------------------------------------------------------------

def test_run_size_reads_the_environment(monkeypatch):
    """The variables README.md documents, spelled out: they are the interface."""
    monkeypatch.delenv("LLM_COURSE_QUICK", raising=False)
    monkeypatch.delenv("LLM_COURSE_RUN", raising=False)
    assert run_size() == "laptop" and quick_run() is False  # by default, the size a laptop runs
    for size in ["quick", "laptop", "full"]:
        monkeypatch.setenv("LLM_COURSE_RUN", size)
        assert run_size() == size
        assert quick_run() is (size == "quick")
    monkeypatch.setenv("LLM_COURSE_RUN", "huge")
    with pytest.raises(ValueError, match="quick, laptop, full"):
        run_size()
    monkeypatch.setenv("LLM_COURSE_QUICK", "1")  # CI's switch wins over anything else
    assert run_size() == "quick" and quick_run() is True
    monkeypatch.delenv("LLM_COURSE_RUN")
    for value in ["0", "", "yes"]:
        monkeypatch.setenv("LLM_COURSE_QUICK", value)
        assert run_size() == "laptop"


@pytest.mark.needs_data
def test_text_to_token_ids_round_trip():
    import tiktoken

    tokenizer = tiktoken.get_encoding("gpt2")
    ids = text_to_token_ids("Hello, world<|endoftext|>", tokenizer)
    assert ids.tolist() == [[15496, 11, 995, 50256]]
    assert token_ids_to_text(ids, tokenizer) == "Hello, world<|endoftext|>"
    assert token_ids_to_text(ids[0], tokenizer) == "Hello, world<|endoftext|>"


# ---------------------------------------------------------------------------
# Losses and the training loop
# ---------------------------------------------------------------------------

def make_loader(num_windows, batch_size, seed=1, drop_last=False):
    generator = torch.Generator().manual_seed(seed)
    data = torch.randint(0, TINY_CONFIG["vocab_size"], (num_windows, 7), generator=generator)
    dataset = TensorDataset(data[:, :-1], data[:, 1:])  # inputs, targets shifted by one
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=drop_last)


def manual_batch_loss(model, inputs, targets):
    with torch.no_grad():
        log_probas = torch.log_softmax(model(inputs), dim=-1)  # (b, t, vocab)
    picked = [log_probas[b, t, targets[b, t]].item()
              for b in range(inputs.shape[0]) for t in range(inputs.shape[1])]
    return -sum(picked) / len(picked)


def test_calc_loss_batch_and_loader_match_a_manual_computation():
    model = tiny_model()
    loader = make_loader(num_windows=5, batch_size=2)  # batches of 2, 2 and 1 windows
    batches = list(loader)
    manual = [manual_batch_loss(model, x, y) for x, y in batches]

    with torch.no_grad():
        batch_loss = calc_loss_batch(*batches[0], model, "cpu").item()
    assert batch_loss == pytest.approx(manual[0], abs=1e-5)
    assert calc_loss_loader(loader, model, "cpu") == pytest.approx(sum(manual) / 3, abs=1e-5)
    assert calc_loss_loader(loader, model, "cpu", num_batches=2) == pytest.approx(sum(manual[:2]) / 2, abs=1e-5)
    assert calc_loss_loader(loader, model, "cpu", num_batches=10) == pytest.approx(sum(manual) / 3, abs=1e-5)
    # An untrained model is close to a uniform guess: loss near ln(vocab_size).
    assert abs(manual[0] - math.log(TINY_CONFIG["vocab_size"])) < 0.5


def test_calc_loss_loader_rejects_an_empty_loader_and_zero_batches():
    model = tiny_model()
    empty = make_loader(num_windows=1, batch_size=2, drop_last=True)
    assert len(empty) == 0
    with pytest.raises(ValueError, match="no batches"):
        calc_loss_loader(empty, model, "cpu")
    with pytest.raises(ValueError, match="num_batches"):
        calc_loss_loader(make_loader(4, 2), model, "cpu", num_batches=0)


def test_train_model_simple_lowers_the_loss_and_tracks_tokens(capsys):
    train_loader = make_loader(num_windows=4, batch_size=2, seed=3)
    val_loader = make_loader(num_windows=2, batch_size=2, seed=4)
    torch.manual_seed(123)
    model = GPTModel(TINY_CONFIG)
    before = calc_loss_loader(train_loader, model, "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.1)
    train_losses, val_losses, tokens_seen = train_model_simple(
        model, train_loader, val_loader, optimizer, "cpu", num_epochs=3, eval_freq=2,
        eval_iter=1, start_context="hello", tokenizer=CharTokenizer())
    # 2 batches per epoch, 3 epochs: steps 0..5, evaluated at steps 0, 2 and 4.
    assert len(train_losses) == len(val_losses) == 3
    assert tokens_seen == [12, 36, 60]  # 2 windows x 6 tokens per step
    assert train_losses[-1] < train_losses[0]
    assert calc_loss_loader(train_loader, model, "cpu") < before - 0.5
    out = capsys.readouterr().out
    samples = [line for line in out.splitlines() if line.startswith("hello")]
    assert len(samples) == 3  # a sample per epoch
    # Every other line is an evaluation: its step and the two losses it returned (3 decimals).
    reports = [line for line in out.splitlines() if line.strip() and line not in samples]
    assert [int(re.search(r"step\D*(\d+)", line).group(1)) for line in reports] == [0, 2, 4]
    printed = [[float(x) for x in re.findall(r"\d+\.\d+", line)] for line in reports]
    assert printed == [pytest.approx([t, v], abs=5e-4) for t, v in zip(train_losses, val_losses)]
    assert model.training  # training mode again after the samples


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

class FixedLogits(nn.Module):
    """Returns the same next-token logits at every position."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.as_tensor(logits, dtype=torch.float32))

    def forward(self, idx):
        batch_size, num_tokens = idx.shape
        return self.logits.expand(batch_size, num_tokens, -1)  # (b, num_tokens, vocab_size)


class CountingModel(nn.Module):
    """Always predicts (last token + 1) mod vocab_size, with certainty."""

    def __init__(self, vocab_size=10):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, idx):
        following = (idx + 1) % self.vocab_size  # (b, num_tokens)
        return 10.0 * nn.functional.one_hot(following, self.vocab_size).float()  # (b, num_tokens, vocab)


def test_greedy_generate_matches_generate_text_simple():
    model = tiny_model(seed=3)
    idx = torch.tensor([[1, 2, 3], [4, 5, 6]])
    expected = generate_text_simple(model, idx, max_new_tokens=15, context_size=12)
    assert torch.equal(generate(model, idx, 15, context_size=12), expected)
    assert generate(model, idx, 15, context_size=12).shape == (2, 18)  # cropping to 12 works


@pytest.mark.parametrize("temperature", [0.0, 0.5, 1.0, 5.0])
def test_top_k_1_equals_greedy_for_any_temperature(temperature):
    model = tiny_model(seed=4)
    idx = torch.tensor([[7, 1, 3]])
    greedy = generate(model, idx, 10, context_size=12)
    torch.manual_seed(0)
    assert torch.equal(generate(model, idx, 10, context_size=12, temperature=temperature, top_k=1), greedy)


def test_a_tiny_temperature_samples_the_greedy_tokens():
    model = tiny_model(seed=5)
    idx = torch.tensor([[2, 9]])
    greedy = generate(model, idx, 10, context_size=12)
    for seed in range(5):
        torch.manual_seed(seed)
        assert torch.equal(generate(model, idx, 10, context_size=12, temperature=1e-5), greedy)


def nucleus(probas, top_p):
    """The smallest set of most likely tokens whose probabilities reach top_p."""
    order = sorted(range(len(probas)), key=lambda i: -probas[i])
    kept, total = set(), 0.0
    for i in order:
        kept.add(i)
        total += probas[i]
        if total >= top_p:
            break
    return kept


def sampled_tokens(model, n_seeds=40, batch_size=25, **kwargs):
    seen = set()
    for seed in range(n_seeds):
        torch.manual_seed(seed)
        out = generate(model, torch.zeros(batch_size, 1, dtype=torch.long), 1, context_size=4, **kwargs)
        seen.update(out[:, -1].tolist())
    return seen


# Probabilities in scrambled vocabulary order; sorted: 0.4 (1), 0.3 (3), 0.15 (4), 0.1 (2), 0.05 (0).
PROBAS = [0.05, 0.4, 0.1, 0.3, 0.15]
EPS = 1e-4


@pytest.mark.parametrize("top_p, expected", [
    (0.2, {1}),
    (0.4 - EPS, {1}),
    (0.4 + EPS, {1, 3}),
    (0.7 - EPS, {1, 3}),
    (0.7 + EPS, {1, 3, 4}),
    (0.85 + EPS, {1, 3, 4, 2}),
    (1.0, {0, 1, 2, 3, 4}),
])
def test_top_p_samples_exactly_the_smallest_set_reaching_p(top_p, expected):
    assert nucleus(PROBAS, top_p) == expected  # the test's own reference agrees
    model = FixedLogits(np.log(PROBAS))
    # Every token of the set is sampled at some point, and no token outside it ever is.
    assert sampled_tokens(model, temperature=1.0, top_p=top_p) == expected


def test_top_p_works_on_the_temperature_scaled_and_top_k_filtered_distribution():
    logits = torch.log(torch.tensor(PROBAS))
    scaled = torch.softmax(logits / 3.0, dim=0).tolist()  # flatter: 0.27, 0.24, 0.20, ...
    model = FixedLogits(logits)
    assert sampled_tokens(model, temperature=3.0, top_p=0.6) == nucleus(scaled, 0.6)
    assert nucleus(scaled, 0.6) != nucleus(PROBAS, 0.6)
    # top_k=2 leaves 0.4 and 0.3, renormalized to 0.571 and 0.429: top_p=0.5 keeps one.
    assert sampled_tokens(model, temperature=1.0, top_k=2, top_p=0.5) == {1}
    assert sampled_tokens(model, temperature=1.0, top_k=2) == {1, 3}


def test_sampling_is_repeatable_with_a_seed():
    model = tiny_model(seed=6)
    idx = torch.tensor([[1, 2]])
    runs = []
    for _ in range(2):
        torch.manual_seed(42)
        runs.append(generate(model, idx, 10, context_size=12, temperature=1.5, top_k=20, top_p=0.9))
    assert torch.equal(runs[0], runs[1])


def test_eos_stops_early_without_appending_the_end_token():
    model = CountingModel()
    out = generate(model, torch.tensor([[0]]), max_new_tokens=20, context_size=4, eos_id=3)
    assert out.tolist() == [[0, 1, 2]]  # the book's behaviour: 3 is picked, not appended
    # Without eos_id, all tokens are produced.
    assert generate(model, torch.tensor([[0]]), 6, context_size=4).tolist() == [[0, 1, 2, 3, 4, 5, 6]]
    # Sampling stops too.
    torch.manual_seed(0)
    assert generate(model, torch.tensor([[0]]), 20, 4, temperature=1.0, eos_id=3).tolist() == [[0, 1, 2]]


def test_a_first_pick_of_end_of_text_returns_the_prompt_alone():
    logits = torch.zeros(50257)
    logits[50256] = 5.0  # <|endoftext|> is the most likely next token
    out = generate(FixedLogits(logits), torch.tensor([[15496, 11]]), max_new_tokens=10,
                   context_size=8, eos_id=50256)
    assert out.tolist() == [[15496, 11]]  # "Hello," and nothing more, as in the book


def test_eos_in_a_batch_pads_finished_sequences_until_all_are_done():
    model = CountingModel()
    out = generate(model, torch.tensor([[0], [2], [5]]), max_new_tokens=20, context_size=4, eos_id=3)
    assert out.tolist() == [[0, 1, 2, 3, 3, 3, 3, 3],
                            [2, 3, 3, 3, 3, 3, 3, 3],
                            [5, 6, 7, 8, 9, 0, 1, 2]]


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": -0.5}, "temperature"),
    ({"temperature": 1.0, "top_k": 0}, "top_k"),
    ({"top_k": 2.5}, "top_k"),
    ({"temperature": 1.0, "top_p": 0.0}, "top_p"),
    ({"temperature": 1.0, "top_p": 1.5}, "top_p"),
    ({"top_p": -0.1}, "top_p"),
    ({"max_new_tokens": -1}, "max_new_tokens"),
])
def test_generate_rejects_invalid_settings(kwargs, message):
    model = CountingModel()
    args = {"max_new_tokens": 3, "context_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(model, torch.tensor([[0]]), **args)


@pytest.mark.parametrize("generator", [generate, generate_cached, generate_stream])
@pytest.mark.parametrize("name, value", [
    ("temperature", float("nan")), ("temperature", float("inf")), ("temperature", -1.0),
    ("temperature", 1e-45),  # logits / 1e-45 overflows to inf, and softmax to nan
    ("top_p", float("nan")), ("top_p", float("inf")), ("top_p", -0.5), ("top_p", 0.0),
])
def test_unusable_temperatures_and_top_p_are_value_errors_naming_them(generator, name, value):
    model = tiny_model()
    settings = {"temperature": 1.0, name: value}
    with pytest.raises(ValueError, match=f"^{name} must be"):
        tokens = generator(model, torch.tensor([[1, 2]]), max_new_tokens=3,
                           context_size=TINY_CONFIG["context_length"], **settings)
        list(tokens)  # generate_stream checks when it starts


def test_the_smallest_temperature_allowed_still_samples():
    torch.manual_seed(0)
    out = generate(tiny_model(), torch.tensor([[1, 2]]), max_new_tokens=3,
                   context_size=TINY_CONFIG["context_length"], temperature=MIN_TEMPERATURE)
    assert out.shape == (1, 5)


# ---------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------

def test_checkpoint_round_trip_gives_identical_logits_and_optimizer_state(tmp_path):
    model = tiny_model(seed=7)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    inputs, targets = next(iter(make_loader(2, 2)))
    calc_loss_batch(inputs, targets, model, "cpu").backward()
    optimizer.step()
    model.eval()

    path = tmp_path / "model.pth"
    save_gpt_checkpoint(path, model, TINY_CONFIG, optimizer)
    reloaded, checkpoint = load_gpt_checkpoint(path)
    assert checkpoint["config"] == TINY_CONFIG
    assert not reloaded.training
    with torch.no_grad():
        assert torch.equal(model(inputs), reloaded(inputs))

    resumed = torch.optim.AdamW(reloaded.parameters(), lr=1e-3, weight_decay=0.1)
    resumed.load_state_dict(checkpoint["optimizer_state_dict"])
    for saved, restored in zip(optimizer.state.values(), resumed.state.values()):
        assert torch.equal(saved["exp_avg"], restored["exp_avg"])

    # A bare state_dict loads with weights_only=True when the configuration is given.
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    reloaded_bare, _ = load_gpt_checkpoint(bare, config=TINY_CONFIG)
    with torch.no_grad():
        assert torch.equal(model(inputs), reloaded_bare(inputs))
    with pytest.raises(ValueError, match="configuration"):
        load_gpt_checkpoint(bare)


def test_load_gpt_checkpoint_reports_files_that_do_not_fit(tmp_path):
    path = tmp_path / "model.pth"
    save_gpt_checkpoint(path, tiny_model(), TINY_CONFIG)
    wider = _with_config(path, tmp_path, {**TINY_CONFIG, "emb_dim": 32})
    with pytest.raises(ValueError, match=r"do not fit.*tok_emb.weight: \(40, 16\) in the file, \(40, 32\)"):
        load_gpt_checkpoint(wider)
    deeper = _with_config(path, tmp_path, {**TINY_CONFIG, "n_layers": 3})
    with pytest.raises(ValueError, match=r"missing, e.g. trf_blocks.2.") as error:
        load_gpt_checkpoint(deeper)
    assert len(str(error.value)) < 400  # a summary, not PyTorch's list of every tensor
    biased = _with_config(path, tmp_path, {**TINY_CONFIG, "qkv_bias": True})
    with pytest.raises(ValueError, match="missing, e.g. trf_blocks.0.att.W_query.bias"):
        load_gpt_checkpoint(biased)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        load_gpt_checkpoint(text_file)
    with pytest.raises(FileNotFoundError):
        load_gpt_checkpoint(tmp_path / "missing.pth")


def _with_config(path, tmp_path, config):
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["config"] = config
    changed = tmp_path / "changed.pth"
    torch.save(checkpoint, changed)
    return changed


def test_a_failed_save_keeps_the_previous_checkpoint_and_leaves_no_partial_file(tmp_path,
                                                                                 monkeypatch):
    model = tiny_model()
    path = tmp_path / "model.pth"
    save_gpt_checkpoint(path, model, TINY_CONFIG)
    before = path.read_bytes()

    def save_half_then_fail(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_gpt_checkpoint(path, model, TINY_CONFIG, step=3)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_missing_checkpoint_is_named_in_one_error_style(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: .*nothing.pth"):
        load_gpt_checkpoint(tmp_path / "nothing.pth", config=TINY_CONFIG)


# ---------------------------------------------------------------------------
# OpenAI's weights: configuration and assign
# ---------------------------------------------------------------------------

def test_gpt2_config_and_model_size_describe_the_published_checkpoints():
    with pytest.raises(KeyError, match="gpt2-huge"):
        gpt2_config("gpt2-huge")
    assert gpt2_model_size("gpt2-medium (355M)") == "355M"
    with pytest.raises(KeyError, match=r"gpt2-huge \(9B\)"):
        gpt2_model_size("gpt2-huge (9B)")
    # The hparams.json the downloader expects for each size come from the same table.
    published = gpt_download.published_gpt2_hparams()
    assert list(published) == [gpt2_model_size(name) for name in MODEL_CONFIGS]
    for name in MODEL_CONFIGS:
        cfg, hparams = gpt2_config(name), published[gpt2_model_size(name)]
        assert (hparams["n_embd"], hparams["n_layer"], hparams["n_head"], hparams["n_ctx"],
                hparams["n_vocab"]) == (cfg["emb_dim"], cfg["n_layers"], cfg["n_heads"],
                                        cfg["context_length"], cfg["vocab_size"])
        assert cfg["qkv_bias"] is True  # OpenAI's checkpoints hold query, key and value biases


def test_assign_copies_and_fails_loudly_on_a_shape_mismatch():
    left = nn.Parameter(torch.zeros(3, 2))
    right = np.arange(6, dtype=np.float32).reshape(3, 2)
    param = assign(left, right)
    assert isinstance(param, nn.Parameter)
    assert param.tolist() == right.tolist()
    right[0, 0] = 100.0  # the parameter is a copy, not a view of the array
    assert param[0, 0].item() == 0.0
    with pytest.raises(ValueError, match=r"W_query.*\(3, 2\).*\(2, 3\)"):
        assign(left, right.T, "W_query")


def test_load_weights_into_gpt_needs_qkv_biases():
    params = {"blocks": [{}] * TINY_CONFIG["n_layers"], "wte": np.zeros((40, 16), np.float32),
              "wpe": np.zeros((12, 16), np.float32)}
    with pytest.raises(ValueError, match="qkv_bias"):
        load_weights_into_gpt(GPTModel(TINY_CONFIG), params)


def with_book_mask_buffers(state_dict, config):
    """A state_dict as the book's GPTModel saves it: each block also holds its causal mask."""
    mask = torch.triu(torch.ones(config["context_length"], config["context_length"]), diagonal=1)
    book = dict(state_dict)
    for i in range(config["n_layers"]):
        book[f"trf_blocks.{i}.att.mask"] = mask.clone()
    return book


def test_a_state_dict_saved_by_the_books_model_loads(tmp_path, capsys):
    model = tiny_model(seed=5)
    path = tmp_path / "model.pth"
    torch.save(with_book_mask_buffers(model.state_dict(), TINY_CONFIG), path)

    loaded, _ = load_gpt_checkpoint(path, config=TINY_CONFIG)

    note = capsys.readouterr().out.strip()
    assert "book's GPTModel" in note and "2 causal-mask buffers" in note and len(note.splitlines()) == 1
    idx = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(loaded(idx), model(idx))
    # Everything else stays strict: an unknown tensor is still refused.
    bad = with_book_mask_buffers(model.state_dict(), TINY_CONFIG)
    bad["trf_blocks.0.att.extra"] = torch.zeros(1)
    torch.save(bad, path)
    with pytest.raises(ValueError, match="1 unexpected, e.g. trf_blocks.0.att.extra"):
        load_gpt_checkpoint(path, config=TINY_CONFIG)
