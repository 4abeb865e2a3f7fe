"""Tests for Chapter 3: causal attention and multi-head attention."""

import math

import pytest
import torch

from previous_chapters import CausalAttention, MultiHeadAttention, MultiHeadAttentionWrapper

D_IN = 5
CONTEXT_LENGTH = 8


def make_mha(d_out=6, num_heads=3, dropout=0.0, qkv_bias=False):
    return MultiHeadAttention(D_IN, d_out, CONTEXT_LENGTH, dropout, num_heads, qkv_bias=qkv_bias)


def make_causal(d_out=6, dropout=0.0, qkv_bias=False):
    return CausalAttention(D_IN, d_out, CONTEXT_LENGTH, dropout, qkv_bias=qkv_bias)


MODULES = {"MultiHeadAttention": make_mha, "CausalAttention": make_causal}


def captured_attention_weights(module, x):
    """Run module on x and return the attention weights it passed to its dropout layer."""
    captured = []
    module.use_sdpa = False  # the written-out path, whose weights pass through module.dropout
    handle = module.dropout.register_forward_hook(lambda mod, args, out: captured.append(args[0]))
    try:
        module(x)
    finally:
        handle.remove()
    assert len(captured) == 1
    return captured[0]


def reference_mha(mha, x):
    """Causal multi-head attention written out with loops over batch, head and position."""
    q, k, v = mha.W_query(x), mha.W_key(x), mha.W_value(x)
    b, num_tokens, _ = x.shape
    hd = mha.head_dim
    context = torch.zeros(b, num_tokens, mha.d_out)
    for n in range(b):
        for h in range(mha.num_heads):
            cols = slice(h * hd, (h + 1) * hd)
            for i in range(num_tokens):
                scores = torch.tensor([q[n, i, cols] @ k[n, j, cols] for j in range(i + 1)])
                weights = torch.softmax(scores / math.sqrt(hd), dim=0)
                context[n, i, cols] = sum(weights[j] * v[n, j, cols] for j in range(i + 1))
    return mha.out_proj(context)


@pytest.mark.parametrize("name", MODULES)
def test_future_tokens_do_not_change_earlier_outputs(name):
    torch.manual_seed(123)
    module = MODULES[name](dropout=0.5).eval()  # eval() switches dropout off
    x = torch.randn(2, 7, D_IN)
    changed = x.clone()
    changed[:, 4] += torch.randn(2, D_IN)  # alter token 4 only

    with torch.no_grad():
        out, out_changed = module(x), module(changed)

    assert torch.equal(module(x), out)  # deterministic in eval mode
    assert torch.allclose(out[:, :4], out_changed[:, :4], atol=1e-6)
    assert (out[:, 4] - out_changed[:, 4]).abs().max() > 1e-3


@pytest.mark.parametrize("num_heads", [2, 4])
@pytest.mark.parametrize("qkv_bias", [False, True])
def test_multihead_attention_equals_wrapper_with_same_weights(num_heads, qkv_bias):
    head_dim = 3
    d_out = num_heads * head_dim
    torch.manual_seed(123)
    wrapper = MultiHeadAttentionWrapper(D_IN, head_dim, CONTEXT_LENGTH, 0.0, num_heads, qkv_bias=qkv_bias)
    mha = MultiHeadAttention(D_IN, d_out, CONTEXT_LENGTH, 0.0, num_heads, qkv_bias=qkv_bias)
    x = torch.randn(3, 6, D_IN)
    assert not torch.allclose(mha(x), wrapper(x), atol=1e-3)  # different weights so far

    with torch.no_grad():
        for h, head in enumerate(wrapper.heads):
            rows = slice(h * head_dim, (h + 1) * head_dim)
            for role in ("W_query", "W_key", "W_value"):
                getattr(mha, role).weight[rows] = getattr(head, role).weight
                if qkv_bias:
                    getattr(mha, role).bias[rows] = getattr(head, role).bias
        mha.out_proj.weight.copy_(torch.eye(d_out))  # the wrapper has no output projection
        mha.out_proj.bias.zero_()
        out, expected = mha(x), wrapper(x)

    assert out.shape == expected.shape == (3, 6, d_out)
    assert torch.allclose(out, expected, atol=1e-6)


def test_multihead_attention_matches_loop_reference():
    torch.manual_seed(123)
    mha = make_mha(d_out=6, num_heads=2, qkv_bias=True).eval()
    x = torch.randn(2, 5, D_IN)
    with torch.no_grad():
        assert torch.allclose(mha(x), reference_mha(mha, x), atol=1e-6)


def test_single_token_attends_only_to_itself():
    torch.manual_seed(123)
    mha = make_mha()
    x = torch.randn(2, 1, D_IN)
    with torch.no_grad():
        assert torch.allclose(mha(x), mha.out_proj(mha.W_value(x)), atol=1e-6)


@pytest.mark.parametrize("name", MODULES)
def test_attention_weights_are_causal_and_rows_sum_to_one(name):
    torch.manual_seed(123)
    module = MODULES[name]()
    num_tokens = 6
    weights = captured_attention_weights(module, torch.randn(2, num_tokens, D_IN))

    expected_shape = (2, 3, num_tokens, num_tokens) if name == "MultiHeadAttention" else (2, num_tokens, num_tokens)
    assert weights.shape == expected_shape
    assert torch.allclose(weights.sum(dim=-1), torch.ones(weights.shape[:-1]), atol=1e-6)
    future = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool), diagonal=1)
    assert torch.all(weights[..., future] == 0)
    assert torch.all(weights[..., ~future] > 0)
    assert torch.all(weights[..., 0, 0] == 1)  # the first token sees only itself


@pytest.mark.parametrize("name", MODULES)
def test_mask_buffer(name):
    module = MODULES[name]()
    expected = torch.triu(torch.ones(CONTEXT_LENGTH, CONTEXT_LENGTH, dtype=torch.bool), diagonal=1)
    assert module.mask.dtype == torch.bool
    assert torch.equal(module.mask, expected)
    assert "mask" in dict(module.named_buffers())
    assert "mask" not in module.state_dict()  # non-persistent: rebuilt, never saved


def test_constructor_rejects_d_out_not_divisible_by_num_heads():
    with pytest.raises(ValueError):
        MultiHeadAttention(D_IN, 10, CONTEXT_LENGTH, 0.0, num_heads=3)
    mha = MultiHeadAttention(D_IN, 12, CONTEXT_LENGTH, 0.0, num_heads=3)
    assert (mha.num_heads, mha.head_dim, mha.d_out) == (3, 4, 12)


@pytest.mark.parametrize("num_tokens", [1, 5, CONTEXT_LENGTH])
def test_inputs_up_to_context_length(num_tokens):
    torch.manual_seed(123)
    mha = make_mha(d_out=6, num_heads=2)
    out = mha(torch.randn(3, num_tokens, D_IN))
    assert out.shape == (3, num_tokens, 6)
    assert torch.isfinite(out).all()


def test_dropout_active_in_training_mode():
    torch.manual_seed(123)
    mha = make_mha(dropout=0.5).train()
    x = torch.randn(2, 6, D_IN)
    assert not torch.allclose(mha(x), mha(x))
    mha.eval()
    assert torch.equal(mha(x), mha(x))


def test_gpt2_small_attention_size():
    mha = MultiHeadAttention(768, 768, 1024, 0.1, num_heads=12, qkv_bias=True)
    assert mha.head_dim == 64
    # Query, key, value and output projections: 4 weight matrices and 4 bias vectors.
    assert sum(p.numel() for p in mha.parameters()) == 4 * 768 * 768 + 4 * 768
