"""Chapter 4: the GPT model, its building blocks, and greedy generation."""

from functools import partial

import pytest
import torch
import torch.nn as nn

import tiny_models
from previous_chapters import (
    GELU,
    GPT_CONFIG_124M,
    MODEL_CONFIGS,
    GPTModel,
    LayerNorm,
    generate_text_simple,
)

# The cases below crop at and beyond a context of 8; with GPT_CONFIG_124M's dropout, their
# checks hold only in eval mode.
TINY_CONFIG = tiny_models.tiny_config(context_length=8, drop_rate=0.1)


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def expected_param_count(cfg):
    """Closed form for GPTModel's parameter count (untied output head)."""
    V, C, d, L = cfg["vocab_size"], cfg["context_length"], cfg["emb_dim"], cfg["n_layers"]
    qkv = 3 * d * d + (3 * d if cfg["qkv_bias"] else 0)
    out_proj = d * d + d
    feed_forward = (d * 4 * d + 4 * d) + (4 * d * d + d)
    layer_norms = 2 * 2 * d
    per_block = qkv + out_proj + feed_forward + layer_norms  # 12 d^2 + 10 d without qkv bias
    return V * d + C * d + L * per_block + 2 * d + V * d


# ---------------------------------------------------------------- LayerNorm, GELU

def test_layer_norm_gives_zero_mean_unit_variance():
    torch.manual_seed(0)
    x = torch.randn(4, 7, 32) * 5 + 3
    out = LayerNorm(32)(x)
    assert torch.allclose(out.mean(dim=-1), torch.zeros(4, 7), atol=1e-5)
    assert torch.allclose(out.var(dim=-1, unbiased=False), torch.ones(4, 7), atol=1e-5)


def test_layer_norm_matches_torch_layer_norm():
    torch.manual_seed(0)
    ours = LayerNorm(32)
    with torch.no_grad():
        ours.scale.copy_(torch.randn(32))
        ours.shift.copy_(torch.randn(32))
    reference = nn.LayerNorm(32, eps=1e-5)
    with torch.no_grad():
        reference.weight.copy_(ours.scale)
        reference.bias.copy_(ours.shift)
    x = torch.randn(3, 5, 32) * 0.1  # small variance, where eps matters
    assert torch.allclose(ours(x), reference(x), atol=1e-5)
    assert [name for name, _ in ours.named_parameters()] == ["scale", "shift"]


def test_gelu_is_the_tanh_approximation():
    x = torch.linspace(-10, 10, 2001)
    expected = torch.nn.functional.gelu(x, approximate="tanh")
    assert torch.allclose(GELU()(x), expected, atol=1e-6)
    # It is not plain ReLU: negative inputs give small negative outputs.
    assert GELU()(torch.tensor(-1.0)).item() == pytest.approx(-0.1588, abs=1e-4)


# ---------------------------------------------------------------- parameter counts

def test_parameter_count_of_124m_model():
    with torch.device("meta"):
        model = GPTModel(GPT_CONFIG_124M)
    total = count_params(model)
    assert total == 163_009_536
    assert total - model.out_head.weight.numel() == 124_412_160
    assert tuple(model.tok_emb.weight.shape) == (50257, 768)
    assert tuple(model.out_head.weight.shape) == (50257, 768)
    assert model.out_head.bias is None


@pytest.mark.parametrize("name", list(MODEL_CONFIGS))
def test_parameter_counts_match_the_closed_form(name):
    cfg = {**GPT_CONFIG_124M, **MODEL_CONFIGS[name]}
    with torch.device("meta"):
        model = GPTModel(cfg)
    assert count_params(model) == expected_param_count(cfg)


def test_parameter_count_of_medium_model_and_with_qkv_bias():
    cfg = {**GPT_CONFIG_124M, **MODEL_CONFIGS["gpt2-medium (355M)"]}
    with torch.device("meta"):
        model = GPTModel(cfg)
    assert count_params(model) == 406_212_608
    assert count_params(model) - model.out_head.weight.numel() == 354_749_440
    cfg_bias = {**cfg, "qkv_bias": True}
    with torch.device("meta"):
        model_bias = GPTModel(cfg_bias)
    assert count_params(model_bias) == 406_212_608 + 24 * 3 * 1024


@pytest.mark.parametrize("name", list(MODEL_CONFIGS))
def test_each_size_has_the_parameter_count_in_its_name(name):
    """OpenAI's models (with query/key/value biases) count their weights without the output
    head, which shares the token embedding's: "gpt2-small (124M)" must build 124M of them."""
    cfg = {**GPT_CONFIG_124M, **MODEL_CONFIGS[name], "qkv_bias": True}
    with torch.device("meta"):
        model = GPTModel(cfg)
    unique = count_params(model) - model.out_head.weight.numel()
    millions = int(name[name.index("(") + 1:name.index("M)")])
    assert round(unique / 1e6) == millions
    assert model.trf_blocks[0].att.head_dim == 64  # every GPT-2 size has 64-dimensional heads


# ---------------------------------------------------------------- forward pass, generation

tiny_model = partial(tiny_models.tiny_model, TINY_CONFIG)


def test_gpt_model_output_shape():
    model = tiny_model()
    idx = torch.randint(0, TINY_CONFIG["vocab_size"], (3, 5))
    assert model(idx).shape == (3, 5, TINY_CONFIG["vocab_size"])


def test_gpt_model_rejects_inputs_longer_than_context_length():
    model = tiny_model()
    model(torch.zeros(1, 8, dtype=torch.long))  # exactly context_length is fine
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize("start_len, context_size", [(3, 8), (10, 8), (6, 4)])
def test_generate_text_simple_is_greedy_and_crops(start_len, context_size):
    model = tiny_model()
    torch.manual_seed(1)
    idx = torch.randint(0, TINY_CONFIG["vocab_size"], (2, start_len))
    max_new = 6
    out = generate_text_simple(model, idx, max_new_tokens=max_new, context_size=context_size)
    assert out.shape == (2, start_len + max_new)
    assert torch.equal(out[:, :start_len], idx)
    with torch.no_grad():
        for pos in range(start_len, start_len + max_new):
            prefix = out[:, :pos][:, -context_size:]
            expected = model(prefix)[:, -1, :].argmax(dim=-1)
            assert torch.equal(out[:, pos], expected)
    # The generated tokens are not all the same one (the check above is not vacuous).
    assert len(set(out[:, start_len:].flatten().tolist())) > 1
