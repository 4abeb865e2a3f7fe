"""GPT-2's weights from files on disk, as the nested dict of arrays the chapters load.

    load_gpt2_params_from_tf_ckpt(ckpt_path, settings)   OpenAI's TensorFlow checkpoint
    load_gpt2_params_from_safetensors(path, settings)    the Hugging Face hub's file

Both check the files against `settings` (hparams.json's keys: n_vocab, n_ctx, n_embd,
n_head, n_layer) before reading a value, and give the same arrays for the same
weights. gpt_download.py downloads the files; this module only reads them. It imports
nothing from the chapters.
"""

import json
import re
from pathlib import Path

import numpy as np

from tf_checkpoint import CheckpointError, checkpoint_prefix, open_checkpoint

GPT2_HPARAM_KEYS = ("n_vocab", "n_ctx", "n_embd", "n_head", "n_layer")


def load_gpt2_params_from_tf_ckpt(ckpt_path, settings, reader="numpy"):
    """Read GPT-2's weights from a TensorFlow checkpoint into nested dicts of arrays.

    `ckpt_path` is the checkpoint prefix (`models/124M/model.ckpt`) or its
    directory. `reader` is "numpy" (no TensorFlow needed) or "tensorflow"
    (TensorFlow's own reader; it imports TensorFlow into this process, which must
    then not train with PyTorch). Both give identical float32 arrays:

        {"wte": (n_vocab, d), "wpe": (n_ctx, d),
         "blocks": [{"attn": {"c_attn": {"w": (d, 3d), "b": (3d,)},
                              "c_proj": {"w": (d, d), "b": (d,)}},
                     "ln_1": {"g": (d,), "b": (d,)}, "ln_2": {"g": (d,), "b": (d,)},
                     "mlp": {"c_fc": {"w": (d, 4d), "b": (4d,)},
                             "c_proj": {"w": (4d, d), "b": (d,)}}},
                    ...one per layer],
         "g": (d,), "b": (d,)}           # the final layer norm, ln_f
    """
    check_hparams(settings, "settings")
    prefix = checkpoint_prefix(ckpt_path)
    checkpoint = open_checkpoint(prefix, reader)
    expected_shapes = gpt2_tensor_shapes(settings)
    check_tensor_shapes(checkpoint.shapes(), expected_shapes, prefix, settings)

    params = {"blocks": [{} for _ in range(settings["n_layer"])]}
    for name, shape in expected_shapes.items():
        array = checkpoint.read(name)
        if array.dtype != np.float32:
            raise CheckpointError(f"{name} in {prefix} is {array.dtype}, not float32")
        if len(shape) == 3:
            # OpenAI stored the linear layers as 1x1 convolutions: (1, d_in, d_out).
            array = array[0]
        _place_tensor(params, name, array)
    return params


def load_gpt2_params_from_safetensors(path, settings):
    """Read the hub's model.safetensors into the nested dict load_gpt2_params_from_tf_ckpt
    returns. The hub stores the linear layers as (d_in, d_out) matrices, as OpenAI did,
    so nothing is transposed."""
    check_hparams(settings, "settings")
    params = {"blocks": [{} for _ in range(settings["n_layer"])]}
    for name, array in _read_safetensors(Path(path), settings).items():
        _place_tensor(params, name, array)
    return params


def read_downloaded_json(path):
    """The JSON value in a downloaded file; CheckpointError (delete it, download again) if it
    is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not JSON ({error}). Delete it and run "
                              "again to download it afresh.") from None


def read_gpt2_hparams(path):
    """Read a GPT-2 hparams.json and check that it has what the loader needs."""
    settings = read_downloaded_json(path)
    check_hparams(settings, str(path))
    return settings


def check_hparams(settings, where):
    """CheckpointError, naming `where`, unless `settings` is a usable GPT-2 hparams dict."""
    if not isinstance(settings, dict):
        raise CheckpointError(f"{where} must be a JSON object with {', '.join(GPT2_HPARAM_KEYS)}")
    bad = [key for key in GPT2_HPARAM_KEYS
           if not (isinstance(settings.get(key), int) and settings[key] > 0)]
    if bad:
        raise CheckpointError(f"{where} lacks a positive integer for {', '.join(bad)} "
                              f"(it has {settings}). A GPT-2 hparams.json names "
                              f"{', '.join(GPT2_HPARAM_KEYS)}.")
    if settings["n_embd"] % settings["n_head"]:
        raise CheckpointError(f"{where}: n_embd={settings['n_embd']} is not divisible "
                              f"by n_head={settings['n_head']}")


def read_hub_config(path):
    """A hub config.json as GPT-2 settings with hparams.json's keys (n_vocab, n_ctx...)."""
    config = read_downloaded_json(path)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    # n_positions is the size of the position embedding; older configs also say n_ctx.
    settings = {"n_vocab": config.get("vocab_size"),
                "n_ctx": config.get("n_positions", config.get("n_ctx")),
                "n_embd": config.get("n_embd"), "n_head": config.get("n_head"),
                "n_layer": config.get("n_layer")}
    check_hparams(settings, f"{path} (vocab_size, n_positions, n_embd, n_head, n_layer)")
    return settings


def safetensors_problem(path, settings):
    """None if `path` is a safetensors file holding GPT-2's float32 tensors of these
    settings' shapes; else what is wrong (for download_file's `verify`)."""
    try:
        _read_safetensors(path, settings, read_values=False)
    except CheckpointError as error:
        return str(error)
    return None


def _hub_to_openai_name(key):
    """`h.3.attn.c_attn.weight` -> `model/h3/attn/c_attn/w` (None for what GPT-2 never reads).

    Hub names may start with `transformer.`; `attn.bias`/`attn.masked_bias` are mask
    buffers, not weights, and `lm_head.weight` is wte again (the head is tied to it).
    """
    key = key.removeprefix("transformer.")
    if key == "lm_head.weight" or re.fullmatch(r"h\.\d+\.attn\.(masked_)?bias", key):
        return None
    *path, kind = key.split(".")
    if not path or kind not in ("weight", "bias"):
        return f"unknown/{key}"
    if path[0] == "h" and len(path) > 1:
        path = [f"h{path[1]}"] + path[2:]
    if path in (["wte"], ["wpe"]):
        return f"model/{path[0]}"
    is_norm = path[-1].startswith("ln_")
    leaf = "b" if kind == "bias" else ("g" if is_norm else "w")
    return "/".join(["model", *path, leaf])


def _read_safetensors(path, settings, read_values=True):
    """{OpenAI tensor name: array} from a hub model.safetensors (shapes checked first)."""
    from safetensors import SafetensorError, safe_open

    expected = {name: shape[1:] if len(shape) == 3 else shape  # no 1x1-convolution axis
                for name, shape in gpt2_tensor_shapes(settings).items()}
    try:
        with safe_open(str(path), framework="numpy") as file:
            names = {}
            for key in file.keys():
                name = _hub_to_openai_name(key)
                if name is None:
                    continue
                if name not in expected:
                    raise CheckpointError(f"{path} holds {key}, which GPT-2 does not have")
                tensor = file.get_slice(key)
                if tensor.get_dtype() != "F32":
                    raise CheckpointError(f"{key} in {path} is {tensor.get_dtype()}, not F32")
                if tuple(tensor.get_shape()) != expected[name]:
                    raise CheckpointError(f"{key} in {path} has shape {tuple(tensor.get_shape())}, "
                                          f"but the config calls for {expected[name]}")
                names[name] = key
            missing = [name for name in expected if name not in names]
            if missing:
                raise CheckpointError(f"{path} lacks the tensor for {missing[0]}"
                                      + (f" and {len(missing) - 1} more" if len(missing) > 1
                                         else ""))
            if not read_values:
                return None
            return {name: file.get_tensor(key) for name, key in names.items()}
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from None


# ---------------------------------------------------------------------------
# GPT-2's tensors: names, shapes, and where they go in `params`
# ---------------------------------------------------------------------------

def gpt2_param_count(settings):
    """How many numbers a GPT-2 checkpoint holds (no output layer: it reuses wte)."""
    vocab, context, d, layers = (settings[key] for key in ("n_vocab", "n_ctx", "n_embd", "n_layer"))
    per_block = (2 * d                  # ln_1 gain and bias
                 + d * 3 * d + 3 * d    # attn/c_attn: fused query, key, value projection
                 + d * d + d            # attn/c_proj: attention output projection
                 + 2 * d                # ln_2
                 + d * 4 * d + 4 * d    # mlp/c_fc: expand to 4d
                 + 4 * d * d + d)       # mlp/c_proj: back to d
    return vocab * d + context * d + layers * per_block + 2 * d  # + ln_f


def gpt2_tensor_shapes(settings):
    """OpenAI's tensor names and shapes for a GPT-2 with these hparams."""
    d = settings["n_embd"]
    shapes = {"model/wte": (settings["n_vocab"], d), "model/wpe": (settings["n_ctx"], d)}
    for layer in range(settings["n_layer"]):
        block = f"model/h{layer}"
        shapes.update({
            f"{block}/ln_1/g": (d,), f"{block}/ln_1/b": (d,),
            f"{block}/attn/c_attn/w": (1, d, 3 * d), f"{block}/attn/c_attn/b": (3 * d,),
            f"{block}/attn/c_proj/w": (1, d, d), f"{block}/attn/c_proj/b": (d,),
            f"{block}/ln_2/g": (d,), f"{block}/ln_2/b": (d,),
            f"{block}/mlp/c_fc/w": (1, d, 4 * d), f"{block}/mlp/c_fc/b": (4 * d,),
            f"{block}/mlp/c_proj/w": (1, 4 * d, d), f"{block}/mlp/c_proj/b": (d,),
        })
    shapes.update({"model/ln_f/g": (d,), "model/ln_f/b": (d,)})
    return shapes


def check_tensor_shapes(found, expected, prefix, settings):
    """Fail before reading anything if the checkpoint does not fit the hparams."""
    advice = (f"Are the checkpoint and its hparams ({settings}) from the same model? "
              f"If the files were downloaded, delete {prefix.parent} and download again.")
    missing = [name for name in expected if name not in found]
    if missing:
        more = f" and {len(missing) - 1} more tensors" if len(missing) > 1 else ""
        raise CheckpointError(f"{prefix} lacks {missing[0]}{more}. {advice}")
    for name, shape in expected.items():
        if tuple(found[name]) != shape:
            raise CheckpointError(f"{name} in {prefix} has shape {tuple(found[name])}, "
                                  f"but the hparams call for {shape}. {advice}")


def _place_tensor(params, name, array):
    """Store model/h3/attn/c_attn/w at params["blocks"][3]["attn"]["c_attn"]["w"]."""
    parts = name.split("/")[1:]  # drop the leading "model"
    node = params
    block = re.fullmatch(r"h(\d+)", parts[0])
    if block:
        node, parts = params["blocks"][int(block.group(1))], parts[1:]
    elif parts[0] == "ln_f":  # the final layer norm sits at the top level: params["g"], params["b"]
        parts = parts[1:]
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = array
