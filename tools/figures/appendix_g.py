"""The figures of Appendix G: from GPT-2 to Llama 3.2 and Qwen 3."""

import math

import matplotlib.pyplot as plt
import numpy as np

from tools.figures.style import Figure, MUTED, digraph, fill, light, strong

NOTEBOOK = "appendix_g_llama_qwen.ipynb"


def draw_appendix_g_blocks():
    """GPT-2's block and Llama 3.2's side by side; what changed is coloured."""
    from previous_chapters import GPT_CONFIG_124M, LLAMA32_CONFIG_1B
    gpt, llama = GPT_CONFIG_124M, LLAMA32_CONFIG_1B
    same, new = fill("grey"), fill("orange")
    return digraph(f"""
  subgraph cluster_gpt2 {{
    label="GPT-2 small (Chapter 4)"; fontsize=12; color="{MUTED}"; style=rounded;
    g_tok [label="token embedding\\n{gpt['vocab_size']:,} x {gpt['emb_dim']}", {same}];
    g_pos [label="+ learned position embedding\\n{gpt['context_length']:,} positions", {fill("purple")}];
    g_norm1 [label="LayerNorm (mean, scale, shift)", {fill("teal")}];
    g_att [label="multi-head attention\\n{gpt['n_heads']} query, key and value heads\\nbiases, dropout", {fill("teal")}];
    g_norm2 [label="LayerNorm", {fill("teal")}];
    g_ff [label="feed-forward: Linear, GELU, Linear\\n{gpt['emb_dim']} -> {4 * gpt['emb_dim']} -> {gpt['emb_dim']}", {fill("teal")}];
    g_out [label="final LayerNorm, output head\\nfloat32", {same}];
    g_tok -> g_pos -> g_norm1 -> g_att -> g_norm2 -> g_ff -> g_out;
  }}
  subgraph cluster_llama {{
    label="Llama 3.2 1B (this appendix)"; fontsize=12; color="{MUTED}"; style=rounded;
    l_tok [label="token embedding\\n{llama['vocab_size']:,} x {llama['emb_dim']}", {same}];
    l_pos [label="no position embedding:\\nRoPE inside the attention", {new}];
    l_norm1 [label="RMSNorm (no mean, no shift)", {new}];
    l_att [label="grouped-query attention\\n{llama['n_heads']} query heads, {llama['n_kv_groups']} key/value heads\\nRoPE on queries and keys; no biases", {new}];
    l_norm2 [label="RMSNorm", {new}];
    l_ff [label="SwiGLU: silu(x W_gate) * (x W_up), W_down\\n{llama['emb_dim']} -> {llama['hidden_dim']} -> {llama['emb_dim']}", {new}];
    l_out [label="final RMSNorm, head tied to the embedding\\nbfloat16 weights", {new}];
    l_tok -> l_pos -> l_norm1 -> l_att -> l_norm2 -> l_ff -> l_out;
  }}
""", rankdir="TB", ranksep=0.3)


def draw_appendix_g_silu():
    import torch
    x = torch.linspace(-5, 5, 401)
    gelu = torch.nn.functional.gelu(x, approximate="tanh")
    silu = torch.nn.functional.silu(x)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    a1.plot(x, gelu, color=strong("blue"), lw=2, label="GELU (GPT-2)")
    a1.plot(x, silu, color=strong("orange"), lw=2, ls="--", label="SiLU = x \u00b7 sigmoid(x) (Llama, Qwen)")
    a1.axhline(0, color=MUTED, lw=0.6)
    a1.set_xlabel("x")
    a1.set_title("Two smooth activations", fontsize=11.5, weight="bold")
    a1.legend(fontsize=9, frameon=False, loc="upper left")
    # The gate: silu(g) * u, for three values of u, as the gate's input g varies
    for u, color in [(1.0, "green"), (0.5, "purple"), (-1.0, "red")]:
        a2.plot(x, silu * u, color=strong(color), lw=2, label=f"up value u = {u:g}")
    a2.axhline(0, color=MUTED, lw=0.6)
    a2.set_xlabel("gate input g = x W_gate (one hidden unit)")
    a2.set_ylabel("silu(g) \u00b7 u")
    a2.set_title("SwiGLU: the gate scales the up value", fontsize=11.5, weight="bold")
    a2.legend(fontsize=9, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def draw_appendix_g_rope_scaling():
    from previous_chapters import LLAMA32_CONFIG_1B, rope_frequencies
    cfg = LLAMA32_CONFIG_1B
    head_dim = cfg["emb_dim"] // cfg["n_heads"]
    scaling = cfg["rope_freq"]
    original = scaling["original_context_length"]
    plain = rope_frequencies(head_dim, cfg["rope_base"]).numpy()
    scaled = rope_frequencies(head_dim, cfg["rope_base"], scaling).numpy()
    pairs = np.arange(len(plain))
    fig, ax = plt.subplots(figsize=(9.6, 4.4))
    ax.plot(pairs, 2 * math.pi / plain, "o-", color=strong("blue"), ms=4, lw=1.5,
            label="RoPE as pretrained (base 500,000)")
    ax.plot(pairs, 2 * math.pi / scaled, "s--", color=strong("orange"), ms=4, lw=1.5,
            label=f"with Llama 3's scaling (factor {scaling['factor']:g})")
    ax.set_yscale("log")
    high = original / scaling["high_freq_factor"]
    low = original / scaling["low_freq_factor"]
    for length, text, color in [
            (high, f"{high:,.0f}: shorter wavelengths kept", "green"),
            (low, f"{low:,.0f}: longer ones divided by {scaling['factor']:g}", "red"),
            (cfg["context_length"], f"new context: {cfg['context_length']:,}", "purple")]:
        ax.axhline(length, color=strong(color), lw=1, ls=":")
        ax.text(0.3, length * 1.25, text, fontsize=8.5, color=strong(color))
    ax.axvspan(pairs[(2 * math.pi / plain) > high].min() - 0.5,
               pairs[(2 * math.pi / plain) < low].max() + 0.5,
               color=light("grey"), zorder=0)
    ax.set_xlabel(f"rotating pair i (of {head_dim // 2}; head_dim {head_dim})")
    ax.set_ylabel("wavelength: positions per full turn")
    ax.set_title("Llama 3's RoPE scaling slows down only the slow pairs", fontsize=11.5, weight="bold")
    ax.legend(fontsize=9, frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def draw_appendix_g_gqa():
    """8 query heads sharing 2 key/value heads: Llama 3.2 1B's ratio (32 to 8) at a readable size."""
    queries = "\n".join(f'  q{i} [label="query\\nhead {i}", {fill("orange")}];' for i in range(8))
    kv = "\n".join(f'  kv{j} [label="key + value\\nhead {j}", {fill("purple")}];' for j in range(2))
    edges = "\n".join(f"  kv{i // 4} -> q{i};" for i in range(8))
    cache = f'  cache [label="KV cache: 2 heads per layer\\ninstead of 8 (4 x less)", {fill("green")}];'
    return digraph(f"""
{kv}
{queries}
{cache}
{edges}
  cache -> kv0 [style=dashed, arrowhead=none]; cache -> kv1 [style=dashed, arrowhead=none];
""", rankdir="TB", ranksep=0.6, nodesep=0.15)


def draw_appendix_g_kv_cache():
    from previous_chapters import (LLAMA32_CONFIG_1B, LLAMA32_CONFIG_3B, QWEN3_CONFIG_1_7B,
                                   QWEN_CONFIG_06_B)
    models = [("Llama 3.2 1B", LLAMA32_CONFIG_1B), ("Llama 3.2 3B", LLAMA32_CONFIG_3B),
              ("Qwen 3 0.6B", QWEN_CONFIG_06_B), ("Qwen 3 1.7B", QWEN3_CONFIG_1_7B)]

    def cache_gib(cfg, heads):
        head_dim = cfg.get("head_dim") or cfg["emb_dim"] // cfg["n_heads"]
        return 2 * cfg["n_layers"] * heads * head_dim * 2 * cfg["context_length"] / 2**30

    gqa = np.array([cache_gib(c, c["n_kv_groups"]) for _, c in models])
    mha = np.array([cache_gib(c, c["n_heads"]) for _, c in models])
    xs = np.arange(len(models))
    fig, ax = plt.subplots(figsize=(9.6, 4.2))
    ax.bar(xs - 0.2, mha, 0.4, color=light("red"), edgecolor=strong("red"),
           label="if every query head had its own keys and values")
    ax.bar(xs + 0.2, gqa, 0.4, color=light("green"), edgecolor=strong("green"),
           label="with grouped-query attention (as published)")
    for k in range(len(models)):
        ax.text(xs[k] - 0.2, mha[k] + 0.6, f"{mha[k]:.1f}", ha="center", fontsize=9, color=strong("red"))
        ax.text(xs[k] + 0.2, gqa[k] + 0.6, f"{gqa[k]:.1f}", ha="center", fontsize=9, color=strong("green"))
    ax.set_xticks(xs, [f"{name}\n({c['context_length']:,} tokens)" for name, c in models], fontsize=9)
    ax.set_ylabel("GiB for one sequence (bfloat16)")
    ax.set_ylim(0, mha.max() * 1.2)
    ax.set_title("KV cache at the full context length", fontsize=11.5, weight="bold")
    ax.legend(fontsize=9, frameon=False, loc="upper right")
    fig.tight_layout()
    return fig


FIGURES = [
    Figure("appendix_g_blocks", NOTEBOOK, "g-gpt2-count",
           "Llama 3.2 keeps GPT-2's plan (embedding, pre-norm blocks, head) and replaces almost "
           "every part: orange is what this appendix changes.",
           "Two columns of boxes: GPT-2's token and position embeddings, LayerNorm, multi-head "
           "attention, LayerNorm, GELU feed-forward and head; beside them Llama 3.2's token "
           "embedding without a position embedding, RMSNorm, grouped-query attention with RoPE, "
           "RMSNorm, SwiGLU feed-forward and a tied head in bfloat16.",
           draw_appendix_g_blocks, "Sizes from GPT_CONFIG_124M and LLAMA32_CONFIG_1B."),
    Figure("appendix_g_silu", NOTEBOOK, "g-silu",
           "SiLU and GELU are nearly the same curve; what is new in SwiGLU is the product: the "
           "gate's SiLU scales a second linear value, which may be negative.",
           "Left: GELU and SiLU over x from -5 to 5, nearly overlapping. Right: silu(g) times u "
           "for u = 1, 0.5 and -1 as the gate input g varies.",
           draw_appendix_g_silu, "Computed with torch.nn.functional.gelu and silu."),
    Figure("appendix_g_rope_scaling", NOTEBOOK, "g-rope-llama3",
           "Pairs that turn more than 4 times within the original 8,192 positions keep their "
           "frequency; those that turn less than once are slowed down 32 times; the grey band "
           "between them is blended.",
           "Wavelength in positions, log scale, of each of the 32 rotating pairs of Llama 3.2 "
           "1B's heads, before and after the frequency scaling, with horizontal lines at 2,048, "
           "8,192 and 131,072 positions.",
           draw_appendix_g_rope_scaling, "Computed with rope_frequencies and LLAMA32_CONFIG_1B."),
    Figure("appendix_g_gqa", NOTEBOOK, "g-gqa",
           "In grouped-query attention a group of query heads reads one key head and one value "
           "head; Llama 3.2 1B has 32 query heads in 8 groups, the same 4 to 1 as drawn here.",
           "Two key-and-value heads at the top, each with arrows to four of eight query heads "
           "below, and a note that the KV cache holds 2 heads per layer instead of 8.",
           draw_appendix_g_gqa),
    Figure("appendix_g_kv_cache", NOTEBOOK, "g-kv-table",
           "At the full context, grouped-query attention shrinks one sequence's KV cache 2 to 4 "
           "times: for Llama 3.2 1B from 16 GiB to 4 GiB.",
           "Bar chart: KV-cache size at full context for Llama 3.2 1B and 3B and Qwen 3 0.6B and "
           "1.7B, with and without grouped-query attention.",
           draw_appendix_g_kv_cache, "Computed from the four published configurations, as in the table above."),
]
