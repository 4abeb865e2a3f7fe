"""Write a GPT-2 checkpoint in OpenAI's TensorFlow format, filled with random weights.

OpenAI's real checkpoints cannot be fetched offline (CI, tests), so this makes
files of the same format, names and shapes for the course's loader to read:
`checkpoint`, `model.ckpt.index`, `model.ckpt.data-00000-of-00001`,
`model.ckpt.meta` (written by TensorFlow's own `Saver`), `hparams.json`, and
copies of GPT-2's `encoder.json` and `vocab.bpe`.

    python tools/make_gpt2_checkpoint.py OUT_ROOT --size 124M
        Real 124M shapes, written to OUT_ROOT/gpt2/124M/ (the course mirror's layout).
    python tools/make_gpt2_checkpoint.py OUT_ROOT --tiny
        Tiny shapes (fast), still under OUT_ROOT/gpt2/124M/ (or --size's folder), so the
        download code can fetch them as if they were the 124M model.
    python tools/make_gpt2_checkpoint.py OUT_ROOT --size 124M --huggingface
        Also the same weights as the Hugging Face hub publishes them, model.safetensors
        and config.json, in OUT_ROOT/huggingface/openai-community/gpt2/, and their sizes
        and SHA-256 in OUT_ROOT/mirror-manifest.json: point LLM_COURSE_MIRROR_MANIFEST
        at it so the download code accepts these files from the mirror.

Every value is random (seeded), so a loader that mixes up two tensors, or
transposes one, cannot go unnoticed.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from gpt2_weights import GPT2_HPARAM_KEYS
from gpt_download import HF_REPO_NAMES, hub_mirror_path, published_gpt2_hparams

REPO = Path(__file__).resolve().parent.parent

TINY_HPARAMS = {"n_vocab": 64, "n_ctx": 16, "n_embd": 8, "n_head": 2, "n_layer": 2}
TOKENIZER_FILES = ("encoder.json", "vocab.bpe")


def default_gpt2_dir():
    """Where the course keeps GPT-2's tokenizer files: ../shared/data/gpt2 beside the repo."""
    shared = Path(os.environ.get("SHARED_DIR", REPO.parent / "shared"))
    return shared / "data" / "gpt2"


def openai_tensor_specs(hparams):
    """(name, shape, kind) of every tensor in OpenAI's GPT-2 checkpoints, in their naming.

    The linear layers are stored as 1x1 convolutions, hence weights of shape
    (1, d_in, d_out). `kind` picks how the random values look.
    """
    d, four_d = hparams["n_embd"], 4 * hparams["n_embd"]
    specs = [("model/wte", (hparams["n_vocab"], d), "weight"),
             ("model/wpe", (hparams["n_ctx"], d), "weight")]
    for layer in range(hparams["n_layer"]):
        h = f"model/h{layer}"
        specs += [
            (f"{h}/ln_1/g", (d,), "gain"), (f"{h}/ln_1/b", (d,), "bias"),
            (f"{h}/attn/c_attn/w", (1, d, 3 * d), "weight"), (f"{h}/attn/c_attn/b", (3 * d,), "bias"),
            (f"{h}/attn/c_proj/w", (1, d, d), "weight"), (f"{h}/attn/c_proj/b", (d,), "bias"),
            (f"{h}/ln_2/g", (d,), "gain"), (f"{h}/ln_2/b", (d,), "bias"),
            (f"{h}/mlp/c_fc/w", (1, d, four_d), "weight"), (f"{h}/mlp/c_fc/b", (four_d,), "bias"),
            (f"{h}/mlp/c_proj/w", (1, four_d, d), "weight"), (f"{h}/mlp/c_proj/b", (d,), "bias"),
        ]
    specs += [("model/ln_f/g", (d,), "gain"), ("model/ln_f/b", (d,), "bias")]
    return specs


def random_tensor(rng, shape, kind):
    """Random float32 values that look like trained ones of that kind."""
    values = rng.standard_normal(shape, dtype=np.float32)
    if kind == "weight":
        values *= 0.02  # GPT-2's initialisation scale
    elif kind == "gain":
        values = 1.0 + 0.1 * values  # layer-norm gains near 1, yet all different
    else:
        values *= 0.05  # biases: small but never zero
    return values


def make_gpt2_checkpoint(out_dir, hparams, seed=0, gpt2_dir=None):
    """Write a random GPT-2 checkpoint with `hparams` into `out_dir`.

    Returns {OpenAI tensor name: float32 array} exactly as written, so tests
    can compare what a loader reads with what is in the files.
    """
    out_dir = Path(out_dir)
    gpt2_dir = Path(gpt2_dir) if gpt2_dir is not None else default_gpt2_dir()
    tokenizer_files = [gpt2_dir / name for name in TOKENIZER_FILES]
    missing = [str(path) for path in tokenizer_files if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"GPT-2's tokenizer files are missing: {', '.join(missing)}. Pass gpt2_dir "
            "(--gpt2-dir) naming a folder with encoder.json and vocab.bpe; the course "
            "keeps them in ../shared/data/gpt2.")

    rng = np.random.default_rng(seed)
    tensors = {name: random_tensor(rng, shape, kind)
               for name, shape, kind in openai_tensor_specs(hparams)}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_with_tensorflow_saver(tensors, out_dir / "model.ckpt")
    # OpenAI's hparams.json: these keys in this order, two-space indent, final newline.
    hparams_text = json.dumps({key: hparams[key] for key in GPT2_HPARAM_KEYS}, indent=2) + "\n"
    (out_dir / "hparams.json").write_text(hparams_text, encoding="utf-8")
    for path in tokenizer_files:
        shutil.copyfile(path, out_dir / path.name)
    return tensors


def hub_tensor_name(openai_name):
    """`model/h3/attn/c_attn/w` -> `h.3.attn.c_attn.weight`, the hub's name for it."""
    parts = openai_name.split("/")[1:]  # drop the leading "model"
    if parts[0].startswith("h") and parts[0][1:].isdigit():
        parts = ["h", parts[0][1:]] + parts[1:]
    if parts in (["wte"], ["wpe"]):  # the embeddings have no leaf name
        return f"{parts[0]}.weight"
    *module, leaf = parts
    return ".".join(module + ["bias" if leaf == "b" else "weight"])  # g and w are weights


def write_hub_files(tensors, hparams, out_dir):
    """Write `tensors` (OpenAI names) as the hub's model.safetensors and config.json.

    Returns {file name: (bytes, SHA-256)} of the two files written.
    """
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The hub keeps the linear layers as (d_in, d_out) matrices: OpenAI's without the 1x1 axis.
    hub_tensors = {hub_tensor_name(name): np.ascontiguousarray(value[0] if value.ndim == 3 else value)
                   for name, value in tensors.items()}
    save_file(hub_tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
              "vocab_size": hparams["n_vocab"], "n_positions": hparams["n_ctx"],
              "n_ctx": hparams["n_ctx"], "n_embd": hparams["n_embd"],
              "n_head": hparams["n_head"], "n_layer": hparams["n_layer"]}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return {name: file_identity(out_dir / name) for name in ("config.json", "model.safetensors")}


def file_identity(path):
    """(bytes, SHA-256) of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def add_to_manifest(manifest_path, files):
    """Record {mirror path: (bytes, SHA-256)} in a mirror manifest (JSON), keeping others."""
    manifest_path = Path(manifest_path)
    entries = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    entries.update({path: {"size": size, "sha256": sha256}
                    for path, (size, sha256) in files.items()})
    manifest_path.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


def save_with_tensorflow_saver(tensors, prefix):
    """Save {name: array} as TF1 variables with tf.compat.v1.train.Saver, like OpenAI did."""
    # Hide TensorFlow's start-up log lines (oneDNN's notice concerns arithmetic; this only copies).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    # A private graph keeps graph mode (which Saver needs) out of the caller's TensorFlow.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        variables = {}
        for name, value in tensors.items():
            # Feed the value through a placeholder: a constant would copy every weight
            # into the graph, and so into model.ckpt.meta.
            placeholder = tf.compat.v1.placeholder(tf.float32, value.shape)
            variables[name] = tf.compat.v1.Variable(placeholder, name=name)
            session.run(variables[name].initializer, {placeholder: value})
        # Relative paths in the `checkpoint` file, so the folder can be moved or served.
        saver = tf.compat.v1.train.Saver(variables, save_relative_paths=True)
        saver.save(session, str(prefix))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_root", help="writes OUT_ROOT/gpt2/<size>/")
    published = published_gpt2_hparams()
    parser.add_argument("--size", choices=published, default="124M",
                        help="the folder name and, without --tiny, the shapes (default 124M)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"use tiny shapes {TINY_HPARAMS} instead of the real ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpt2-dir", help="folder with encoder.json and vocab.bpe "
                                           "(default: ../shared/data/gpt2)")
    parser.add_argument("--huggingface", action="store_true",
                        help="also write the hub's model.safetensors and config.json of the "
                             "same weights, and OUT_ROOT/mirror-manifest.json")
    args = parser.parse_args(argv)

    hparams = TINY_HPARAMS if args.tiny else published[args.size]
    out_dir = Path(args.out_root) / "gpt2" / args.size
    start = time.perf_counter()
    try:
        tensors = make_gpt2_checkpoint(out_dir, hparams, seed=args.seed, gpt2_dir=args.gpt2_dir)
    except FileNotFoundError as error:
        sys.exit(f"make_gpt2_checkpoint: {error}")
    total = sum(path.stat().st_size for path in out_dir.iterdir())
    print(f"Wrote {out_dir} ({total:,} bytes, {hparams}) in "
          f"{time.perf_counter() - start:.1f} s")
    if args.huggingface:
        name = HF_REPO_NAMES[args.size]
        hub_dir = Path(args.out_root) / hub_mirror_path(name, "")
        written = write_hub_files(tensors, hparams, hub_dir)
        manifest = Path(args.out_root) / "mirror-manifest.json"
        add_to_manifest(manifest, {hub_mirror_path(name, file): identity
                                   for file, identity in written.items()})
        print(f"Wrote {hub_dir} (the same weights as the hub's files) and {manifest}")


if __name__ == "__main__":
    main()
