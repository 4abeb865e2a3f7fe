"""Checkpoint files the course can trust: the guarantees behind Chapter 5's save and load.

Chapter 5 saves a model the book's way, torch.save of its state_dict with the configuration
kept beside it, and loads it by building GPTModel(config) and calling load_state_dict. What
the bare torch calls leave open is handled here, and the chapters call it in one line:

- save_atomically: the file is written whole or not at all (a temporary file, fsync, then a
  rename), so an interrupted save keeps the previous checkpoint;
- read_checkpoint: tensors only (weights_only=True), so a file can't run code; a missing or
  unreadable file is one line that names it;
- read_model_checkpoint, read_classifier_checkpoint: also check the configuration against
  the tensors the file holds before any model is built, so a damaged or hostile file can't
  make the loader allocate far more memory than the file holds;
- load_state_dict_checked: load_state_dict, with weights that don't fit summed up in one line.

Every problem is a FileNotFoundError or a ValueError of one line that names the file. This
module never imports previous_chapters (the chapters import it): it returns what it read,
and the chapter builds the model.
"""

import os
import pickle
from pathlib import Path

import torch

# The configuration keys GPTModel (Chapter 4) reads; the first five are sizes.
SIZE_KEYS = ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers")
GPT_CONFIG_KEYS = (*SIZE_KEYS, "drop_rate", "qkv_bias")
MAX_MASK_BYTES = 4 * 2**30  # the causal masks a configuration may ask for (1,024 tokens: 1 MB a layer)
MAX_CLASSES = 100_000  # a classification head larger than this is no spam filter


def save_atomically(obj, path):
    """torch.save(obj, path), written whole or not at all.

    The data goes into a temporary file beside `path`, which replaces `path` only once it is
    complete and on disk, so a save that is interrupted (a full disk, Ctrl-C, a crash) keeps
    the previous file and leaves no partial one.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it the checkpoint
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_checkpoint(path, device="cpu"):
    """The dictionary saved in a PyTorch file, read safely (tensors only).

    FileNotFoundError for a missing file, ValueError for a file that is not a readable
    checkpoint dictionary; both name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # not a PyTorch file, or one holding arbitrary objects
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: "
                         f"{describe_load_error(error)}") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dictionary")
    return checkpoint


def describe_load_error(error):
    """Why torch.load failed, in a few words, without PyTorch's advice to load unsafely."""
    message = " ".join(str(error).split())
    if isinstance(error, pickle.UnpicklingError) or "weights_only" in message:
        return ("it holds Python objects other than tensors, which are never loaded "
                "(loading them could run code from the file)")
    return message[:200] or type(error).__name__


def read_model_checkpoint(path, device="cpu", config=None):
    """A language-model checkpoint, checked: {"config", "model_state_dict", ...}.

    The file is either a dictionary with "model_state_dict" (and "config", as Chapter 5's
    save_gpt_checkpoint writes it) or a bare state_dict, which needs `config`. The returned
    configuration and tensors are safe to build a GPTModel from and load into it.
    """
    checkpoint = read_checkpoint(path, device)
    if "model_state_dict" in checkpoint:
        config = checkpoint.get("config", config)
    else:  # a bare state_dict: torch.save(model.state_dict(), path)
        checkpoint = {"config": config, "model_state_dict": checkpoint}
    if config is None:
        raise ValueError(f"{path} does not record the model configuration; pass config=")
    return checked_checkpoint(checkpoint, config, path)


def read_classifier_checkpoint(path, device="cpu"):
    """A classifier checkpoint (Chapter 6), checked: its configuration also holds num_classes."""
    checkpoint = read_checkpoint(path, device)
    config = checkpoint.get("config")
    if not (isinstance(config, dict) and "model_state_dict" in checkpoint):
        raise ValueError(f"{path} is not a course checkpoint: expected a dict with "
                         "'config' and 'model_state_dict' (see save_gpt_checkpoint)")
    if "num_classes" not in config:
        raise ValueError(f"{path} holds a language model, not a classifier "
                         "(its config has no 'num_classes')")
    if not is_whole_number(config["num_classes"], 1, MAX_CLASSES):
        raise ValueError(f"the configuration in {path} has num_classes={config['num_classes']!r}; "
                         f"it must be a whole number from 1 to {MAX_CLASSES:,}")
    return checked_checkpoint(checkpoint, config, path)


def checked_checkpoint(checkpoint, config, path):
    """`checkpoint` with `config` and its model_state_dict, once they are known to fit together."""
    state_dict = without_book_mask_buffers(checkpoint["model_state_dict"], path)
    check_checkpoint_config(config, state_dict, path)
    return {**checkpoint, "config": config, "model_state_dict": state_dict}


def is_whole_number(value, low, high=None):
    """Whether `value` is an int (not a bool) from `low` to `high` (no upper bound when None)."""
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def check_checkpoint_config(config, state_dict, path):
    """Raise ValueError unless GPTModel(config) builds and could hold the tensors in `state_dict`.

    Checked before any model is built, so that a damaged or hostile file cannot make the
    loader allocate far more memory than the file holds.
    """
    if not isinstance(config, dict):
        raise ValueError(f"the configuration for {path} is a {type(config).__name__}, "
                         "not a dictionary")
    if not isinstance(state_dict, dict) or not all(
            isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise ValueError(f"{path} is not a checkpoint: its model_state_dict is not a "
                         "dictionary of tensors")
    for key in GPT_CONFIG_KEYS:
        if key not in config:
            raise ValueError(f"the configuration for {path} lacks the key {key!r}")
    for key in SIZE_KEYS:
        if not is_whole_number(config[key], 1):
            raise ValueError(f"the configuration for {path} has {key}={config[key]!r}; "
                             "it must be a positive whole number")
    drop_rate = config["drop_rate"]
    if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate <= 1:
        raise ValueError(f"the configuration for {path} has drop_rate={drop_rate!r}; "
                         "it must be a number from 0 to 1")
    _, context, d, heads, layers = (config[key] for key in SIZE_KEYS)
    if d % heads:
        raise ValueError(f"the configuration for {path} has n_heads={heads}, which does not "
                         f"divide emb_dim={d}")
    numel_held = sum(tensor.numel() for tensor in state_dict.values())
    if gpt_numel(config) > 2 * numel_held + 50_000_000 or layers * context * context > MAX_MASK_BYTES:
        raise ValueError(f"the configuration for {path} ({config}) asks for a far larger model "
                         f"than the {numel_held:,} numbers the file holds: the file is damaged "
                         "or not a course checkpoint")


def gpt_numel(config):
    """The numbers a GPTModel of this configuration holds, with query/key/value biases: the
    token embeddings and output layer, the position embeddings, the blocks, the final norm."""
    vocab, context, d, _, layers = (config[key] for key in SIZE_KEYS)
    return 2 * vocab * d + context * d + layers * (12 * d * d + 13 * d) + 2 * d


def without_book_mask_buffers(state_dict, path):
    """`state_dict` without the causal masks (trf_blocks.N.att.mask) that the book's
    GPTModel saves with its weights; ours builds them when needed, so they are skipped."""
    if not isinstance(state_dict, dict):
        return state_dict  # check_checkpoint_config says what is wrong with it
    masks = [name for name in state_dict if name.startswith("trf_blocks.") and name.endswith(".att.mask")]
    if masks:
        print(f"note: {path} was saved by the book's GPTModel; its {len(masks)} causal-mask "
              "buffers are not weights and were skipped")
    return {name: value for name, value in state_dict.items() if name not in masks}


def load_state_dict_checked(model, state_dict, path):
    """model.load_state_dict(state_dict), but weights that don't fit the model are one
    ValueError line naming the file: a short summary rather than PyTorch's list of every tensor."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in state_dict]
    unexpected = [name for name in state_dict if name not in expected]
    reshaped = [name for name in expected if name in state_dict
                and tuple(state_dict[name].shape) != tuple(expected[name].shape)]
    problems = []
    if reshaped:
        name = reshaped[0]
        problems.append(f"{len(reshaped)} tensor(s) of another shape, e.g. {name}: "
                        f"{tuple(state_dict[name].shape)} in the file, "
                        f"{tuple(expected[name].shape)} in the model")
    if missing:
        problems.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
    if problems:
        raise ValueError(f"the weights in {path} do not fit its configuration: " + "; ".join(problems))
    model.load_state_dict(state_dict)
