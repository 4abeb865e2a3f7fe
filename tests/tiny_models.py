"""The tiny model configurations the tests share, and a seeded model built from one.

A test that only needs some tiny model uses TINY, or TINY_GPT2_VOCAB where GPT-2's own
tokenizer feeds it (the CLIs too). A test that depends on a size derives its own with a
visible override, e.g. tiny_config(context_length=8), and says why next to it.
"""

import torch

from previous_chapters import GPT_CONFIG_124M, GPTModel
# OpenAI's hparams at the sizes `tools/make_gpt2_checkpoint.py --tiny` writes, for the tests
# of the checkpoint downloads and readers.
from tools.make_gpt2_checkpoint import TINY_HPARAMS  # noqa: F401


def tiny_config(**changes):
    """GPT_CONFIG_124M's keys at toy sizes, dropout off, with `changes` applied."""
    unknown = changes.keys() - GPT_CONFIG_124M.keys()
    if unknown:  # a misspelt key would otherwise leave the size it meant unchanged
        raise KeyError(f"not a key of GPT_CONFIG_124M: {', '.join(sorted(unknown))}")
    toy_sizes = {"vocab_size": 64, "context_length": 16, "emb_dim": 16, "n_heads": 2,
                 "n_layers": 2, "drop_rate": 0.0}
    return {**GPT_CONFIG_124M, **toy_sizes, **changes}


TINY = tiny_config()
TINY_GPT2_VOCAB = tiny_config(vocab_size=GPT_CONFIG_124M["vocab_size"])


def tiny_model(config, seed=0):
    """GPTModel(config) with its weights seeded by `seed`, in eval mode."""
    torch.manual_seed(seed)
    return GPTModel(config).eval()
