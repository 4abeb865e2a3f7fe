"""Downloading the course's data and OpenAI's GPT-2 checkpoints.

This is the course's one hand-written library file: everything in
`previous_chapters.py` is exported from the notebooks, but downloading is
plumbing rather than a lesson, so it lives here.

Downloads go to the real URLs. Set the environment variable
`LLM_COURSE_MIRROR` to a base URL (e.g. `http://127.0.0.1:8765`) to fetch
every file from a mirror instead; the mirror holds each file under the path
given as its `mirror_path` (for example `the-verdict.txt`, or
`gpt2/124M/hparams.json` for GPT-2's checkpoint files).

OpenAI published GPT-2 as TensorFlow checkpoints. `download_and_load_gpt2`
reads them with a small NumPy reader of TensorFlow's checkpoint format, so the
course never imports TensorFlow unless asked to: TensorFlow and a recent
PyTorch loaded into one process can crash it (a segmentation fault once
training starts). `reader="tensorflow"` uses TensorFlow's own reader instead;
use it in a process of its own (a script that converts and saves the weights),
never in a notebook or script that goes on to train.
"""

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections import namedtuple
from http.client import HTTPException, IncompleteRead
from pathlib import Path

import numpy as np
from tqdm import tqdm  # plain text bars: tqdm.auto needs ipywidgets in notebooks

MIRROR_ENV = "LLM_COURSE_MIRROR"

# The course's data sets: mirror path -> real URLs, primary first.
DATA_FILES = {
    "the-verdict.txt": [
        "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/"
        "ch02/01_main-chapter-code/the-verdict.txt",
    ],
    "instruction-data.json": [
        "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/"
        "ch07/01_main-chapter-code/instruction-data.json",
    ],
    "sms_spam_collection/sms+spam+collection.zip": [
        "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
        "https://f001.backblazeb2.com/file/LLMs-from-scratch/sms%2Bspam%2Bcollection.zip",
    ],
}

GPT2_SIZES = ("124M", "355M", "774M", "1558M")
# The seven files OpenAI publishes for each size.
GPT2_FILES = (
    "checkpoint",
    "encoder.json",
    "hparams.json",
    "model.ckpt.data-00000-of-00001",
    "model.ckpt.index",
    "model.ckpt.meta",
    "vocab.bpe",
)
# Where each file is published, primary first; the mirror path is gpt2/{size}/{file}.
GPT2_URL_TEMPLATES = (
    "https://openaipublic.blob.core.windows.net/gpt-2/models/{size}/{file}",
    "https://f001.backblazeb2.com/file/LLMs-from-scratch/gpt2/{size}/{file}",
)
GPT2_HPARAM_KEYS = ("n_vocab", "n_ctx", "n_embd", "n_head", "n_layer")
CHECKPOINT_READERS = ("numpy", "tensorflow")

CHUNK_BYTES = 1 << 20
RETRYABLE_HTTP_CODES = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """A download failed; the message says which URLs were tried and what to do."""


class _BadBody(DownloadError):
    """The server sent the wrong thing; resuming it would only extend the damage."""


class CheckpointError(ValueError):
    """A checkpoint is damaged, unreadable, or does not match its hparams."""


# ---------------------------------------------------------------------------
# Downloading one file
# ---------------------------------------------------------------------------

def source_urls(urls, mirror_path):
    """The URLs to try, in order: the mirror alone when one is set, else the real ones."""
    mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    if mirror:
        return [f"{mirror}/{mirror_path}"]
    return list(urls)


def download_data_file(mirror_path, data_dir="data"):
    """Download one of the course's data sets (a key of DATA_FILES) into `data_dir`."""
    if mirror_path not in DATA_FILES:
        known = ", ".join(sorted(DATA_FILES))
        raise ValueError(f"Unknown data file {mirror_path!r}; choose one of: {known}")
    destination = Path(data_dir) / Path(mirror_path).name
    return download_file(source_urls(DATA_FILES[mirror_path], mirror_path), destination)


def download_file(urls, destination, expected_size=None, binary=False,
                  retries=4, backoff_s=1.0, timeout_s=60):
    """Download the first of `urls` that works to `destination` and return its path.

    A file already at `destination` is complete (it is only ever renamed there
    once fully downloaded), so it is not fetched again. Bytes arrive in
    `<destination>.part`; a dropped connection is retried with back-off and
    resumed with an HTTP Range request. `expected_size` (bytes) and
    `binary=True` (reject HTML pages) guard against a server that answers
    with the wrong thing; such a body is deleted and reported. After network
    failures the `.part` file is kept, so calling again resumes it.
    """
    if isinstance(urls, str):
        urls = [urls]
    destination = Path(destination)
    if destination.exists() and (expected_size is None
                                 or destination.stat().st_size == expected_size):
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")

    failures = []
    for url in urls:
        try:
            _download_with_retries(url, partial, retries, backoff_s, timeout_s)
            _check_body(partial, expected_size, binary)
        except _BadBody as error:
            partial.unlink(missing_ok=True)
            failures.append(f"{url}: {error}")
        except (DownloadError, OSError, HTTPException) as error:
            # An HTTP error status or a network failure says nothing against the
            # bytes already in the partial file: keep them for the next URL or call.
            failures.append(f"{url}: {error}")
        else:
            partial.replace(destination)
            return destination
    raise DownloadError(f"Could not download {destination.name}.\n  "
                        + "\n  ".join(failures) + "\n" + _download_advice(partial))


def _download_advice(partial):
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        advice = (f"{MIRROR_ENV} is set to {mirror}: check that the mirror is running "
                  "and holds this file, or unset it to use the real URLs.")
    else:
        advice = (f"Check your internet connection, or set {MIRROR_ENV} to a mirror "
                  "that has the file.")
    if partial.exists():
        advice += (f" {partial} keeps the {partial.stat().st_size:,} bytes received "
                   "so far; calling again resumes from there.")
    return advice


def _download_with_retries(url, partial, retries, backoff_s, timeout_s):
    """Fetch `url` into `partial`, retrying transient failures with exponential back-off."""
    for attempt in range(retries + 1):
        try:
            _resume_download(url, partial, timeout_s)
            return
        except urllib.error.HTTPError as error:
            error.close()
            if error.code not in RETRYABLE_HTTP_CODES or attempt == retries:
                raise DownloadError(f"HTTP {error.code} {error.reason}") from None
        except (OSError, HTTPException):  # URLError, timeouts, resets, short bodies
            if attempt == retries:
                raise
        time.sleep(backoff_s * 2 ** attempt)


def _resume_download(url, partial, timeout_s):
    """Append the rest of `url` to `partial`, asking only for the missing bytes."""
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "llm-course"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            # "Range not satisfiable": fine if the partial file already holds every byte.
            total = _content_range(error.headers)[1]
            if total is None or total == have:
                return
            raise _BadBody(f"{partial.name} holds {have:,} bytes but the file has "
                           f"{total:,}") from None
        raise
    with response:
        if have and response.status != 206:  # the server ignored Range: start over
            have = 0
        elif have and _content_range(response.headers)[0] != have:
            raise _BadBody("the server answered the resume request with the wrong byte range")
        remaining = response.headers.get("Content-Length")
        total = have + int(remaining) if remaining is not None else None
        with open(partial, "ab" if have else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True,
            desc=partial.name.removesuffix(".part"), leave=False,
        ) as progress:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                progress.update(len(chunk))
        if total is not None and partial.stat().st_size < total:
            # The connection ended early (http.client does not always say so).
            raise IncompleteRead(b"", total - partial.stat().st_size)


def _content_range(headers):
    """(first byte, total size) from a Content-Range header; None where not stated."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)",
                         (headers.get("Content-Range") or "").strip())
    if not match:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total != "*" else None)


def _check_body(path, expected_size, binary):
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise _BadBody(f"got {size:,} bytes, expected {expected_size:,}")
    if binary:
        with open(path, "rb") as f:
            head = f.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise _BadBody("got an HTML page where a data file was expected "
                           "(a login page, error page or wrong URL?)")


# ---------------------------------------------------------------------------
# GPT-2: download and load
# ---------------------------------------------------------------------------

def download_and_load_gpt2(model_size, models_dir="models", reader="numpy"):
    """Download OpenAI's GPT-2 checkpoint `model_size` (once) and load its weights.

    The seven files land in `models_dir/model_size/`; files already there are
    not fetched again, so a second call works offline. Returns
    `(settings, params)`: `settings` is hparams.json as a dict, `params` the
    nested dict of NumPy arrays that `load_gpt2_params_from_tf_ckpt` describes.
    `reader` is passed on to it: keep the default "numpy" in any process that
    trains (see this module's docstring).
    """
    size = _checked_model_size(model_size)
    model_dir = Path(models_dir) / size
    # hparams.json comes first: it says how many bytes the weights file must have.
    settings = read_gpt2_hparams(_download_gpt2_file(size, "hparams.json", model_dir))
    weights_bytes = 4 * gpt2_param_count(settings)  # float32
    for file_name in GPT2_FILES:
        if file_name != "hparams.json":
            expected = weights_bytes if file_name.startswith("model.ckpt.data") else None
            _download_gpt2_file(size, file_name, model_dir, expected)
    params = load_gpt2_params_from_tf_ckpt(model_dir / "model.ckpt", settings, reader)
    return settings, params


def gpt2_file_urls(model_size, file_name):
    """Where one GPT-2 checkpoint file is fetched from (the mirror alone when set)."""
    urls = [template.format(size=model_size, file=file_name)
            for template in GPT2_URL_TEMPLATES]
    return source_urls(urls, f"gpt2/{model_size}/{file_name}")


def _download_gpt2_file(model_size, file_name, model_dir, expected_size=None):
    # None of the seven files is ever an HTML page, so binary=True (reject HTML)
    # is right for all of them.
    return download_file(gpt2_file_urls(model_size, file_name), model_dir / file_name,
                         expected_size=expected_size, binary=True)


def _checked_model_size(model_size):
    size = str(model_size).strip().upper()
    if size not in GPT2_SIZES:
        raise ValueError(f"Unknown GPT-2 size {model_size!r}; "
                         f"choose one of: {', '.join(GPT2_SIZES)}")
    return size


def read_gpt2_hparams(path):
    """Read a GPT-2 hparams.json and check that it has what the loader needs."""
    path = Path(path)
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not JSON ({error}). Delete it and run "
                              "again to download it afresh.") from None
    _check_hparams(settings, str(path))
    return settings


def _check_hparams(settings, where):
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


# ---------------------------------------------------------------------------
# GPT-2: reading a TensorFlow checkpoint
# ---------------------------------------------------------------------------

def load_gpt2_params_from_tf_ckpt(ckpt_path, settings, reader="numpy"):
    """Read GPT-2's weights from a TensorFlow checkpoint into nested dicts of arrays.

    `ckpt_path` is the checkpoint prefix (`models/124M/model.ckpt`) or its
    directory. `reader` is "numpy" (this module's reader, no TensorFlow needed)
    or "tensorflow" (TensorFlow's own reader; it imports TensorFlow into this
    process, which must then not train with PyTorch). Both give identical
    float32 arrays:

        {"wte": (n_vocab, d), "wpe": (n_ctx, d),
         "blocks": [{"attn": {"c_attn": {"w": (d, 3d), "b": (3d,)},
                              "c_proj": {"w": (d, d), "b": (d,)}},
                     "ln_1": {"g": (d,), "b": (d,)}, "ln_2": {"g": (d,), "b": (d,)},
                     "mlp": {"c_fc": {"w": (d, 4d), "b": (4d,)},
                             "c_proj": {"w": (4d, d), "b": (d,)}}},
                    ...one per layer],
         "g": (d,), "b": (d,)}           # the final layer norm, ln_f
    """
    _check_hparams(settings, "settings")
    prefix = _checkpoint_prefix(Path(ckpt_path))
    checkpoint = _open_checkpoint(prefix, reader)
    expected_shapes = _gpt2_tensor_shapes(settings)
    _check_tensor_shapes(checkpoint.shapes(), expected_shapes, prefix, settings)

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


def _gpt2_tensor_shapes(settings):
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


def _check_tensor_shapes(found, expected, prefix, settings):
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


def _checkpoint_prefix(path):
    """The checkpoint's file prefix (models/124M/model.ckpt), given it or its directory."""
    if path.is_dir():
        path = _prefix_named_in_state_file(path)
    index = path.with_name(path.name + ".index")
    if not index.is_file():
        raise FileNotFoundError(
            f"No TensorFlow checkpoint at {path}: {index} does not exist. Download "
            "one with download_and_load_gpt2(model_size, models_dir), or pass the "
            "checkpoint's prefix, such as models/124M/model.ckpt.")
    if not list(path.parent.glob(path.name + ".data-*-of-*")):
        raise FileNotFoundError(
            f"{index.name} is there but not the weights ({path.name}.data-00000-of-00001) "
            f"in {path.parent}. Download the checkpoint again.")
    return path


def _prefix_named_in_state_file(directory):
    """Like tf.train.latest_checkpoint: the prefix named in the `checkpoint` file."""
    state_file = directory / "checkpoint"
    if not state_file.is_file():
        return directory / "model.ckpt"
    match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$',
                      state_file.read_text(encoding="utf-8"), re.MULTILINE)
    if not match:
        return directory / "model.ckpt"
    named = Path(match.group(1))
    # An absolute path names the folder the checkpoint was saved in, which may
    # be on another machine: then look for the same file name here.
    if named.is_absolute() and not named.with_name(named.name + ".index").exists():
        return directory / named.name
    return directory / named


def _open_checkpoint(prefix, reader):
    if reader not in CHECKPOINT_READERS:
        raise ValueError(f"Unknown checkpoint reader {reader!r}; choose one of: "
                         f"{', '.join(CHECKPOINT_READERS)}")
    if reader == "numpy":
        return _NumpyCheckpoint(prefix)
    try:
        tf = _import_tensorflow()
    except ImportError as error:
        raise ImportError("reader='tensorflow' needs TensorFlow (pip install "
                          "tensorflow-cpu); reader='numpy' needs nothing more.") from error
    return _TensorFlowCheckpoint(tf, prefix)


def _import_tensorflow():
    # Imported only when asked for: it takes seconds and the course does not need it.
    # The settings hide its start-up log lines; oneDNN only affects TensorFlow's
    # own arithmetic, and here TensorFlow only reads files.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf
    return tf


class _TensorFlowCheckpoint:
    """TensorFlow's own checkpoint reader (it also verifies each tensor's checksum)."""

    def __init__(self, tf, prefix):
        # Its C++ core reports damage as TensorFlow errors or as IndexError
        # ("Read less bytes than requested"), ValueError, RuntimeError.
        self._errors = (tf.errors.OpError, IndexError, ValueError, RuntimeError)
        self._prefix = prefix
        try:
            self._reader = tf.train.load_checkpoint(str(prefix))
        except self._errors as error:
            raise self._damaged(error) from None

    def shapes(self):
        return {name: tuple(shape)
                for name, shape in self._reader.get_variable_to_shape_map().items()}

    def read(self, name):
        try:
            return self._reader.get_tensor(name)
        except self._errors as error:
            raise self._damaged(error) from None

    def _damaged(self, error):
        return CheckpointError(f"TensorFlow cannot read {self._prefix}: {error}. "
                               f"Delete {self._prefix.parent} and download it again.")


# A tensor's record in the checkpoint index (TensorFlow's BundleEntryProto).
_BundleEntry = namedtuple("_BundleEntry", "dtype shape shard_id offset size sliced")

_DT_FLOAT = 1           # TensorFlow's DataType enum value for float32
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48      # two block handles (varints), zero padding, then the magic number
_TRAILER_BYTES = 5      # after each block: compression type (1 byte) and a CRC (4 bytes)


class _NumpyCheckpoint:
    """TensorFlow's checkpoint format ("tensor bundle") read with NumPy alone.

    `model.ckpt.index` is a LevelDB-style table: sorted keys, each a tensor
    name whose value is a BundleEntryProto (dtype, shape, shard, byte offset,
    byte size); the empty key holds the BundleHeaderProto. The raw tensor bytes
    lie in `model.ckpt.data-<shard>-of-<shards>` at those offsets.
    """

    def __init__(self, prefix):
        self._prefix = prefix
        index = prefix.with_name(prefix.name + ".index")
        try:
            table = _read_table(index.read_bytes())
            if b"" not in table:
                raise ValueError("it has no bundle header")
            self._num_shards, little_endian = _parse_bundle_header(table.pop(b""))
            if not little_endian:
                raise ValueError("it was written on a big-endian machine; use reader='tensorflow'")
            self._entries = {key.decode(): _parse_bundle_entry(value)
                             for key, value in table.items()}
        except ValueError as error:
            raise CheckpointError(f"Cannot read {index}: {error}") from None

    def shapes(self):
        return {name: entry.shape for name, entry in self._entries.items()}

    def read(self, name):
        entry = self._entries[name]
        if entry.dtype != _DT_FLOAT or entry.sliced:
            raise CheckpointError(f"{name} in {self._prefix} is not a plain float32 tensor "
                                  f"(dtype enum {entry.dtype}); use reader='tensorflow'")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if entry.size != 4 * count:
            raise CheckpointError(f"{name}: the index gives {entry.size:,} bytes for "
                                  f"shape {entry.shape}; the checkpoint is damaged")
        data_file = self._prefix.with_name(
            f"{self._prefix.name}.data-{entry.shard_id:05d}-of-{self._num_shards:05d}")
        with open(data_file, "rb") as f:
            f.seek(entry.offset)
            array = np.fromfile(f, dtype="<f4", count=count)
        if array.size != count:
            raise CheckpointError(f"{data_file} ends before the data of {name}: it is "
                                  "incomplete. Delete it and download it again.")
        return array.astype(np.float32, copy=False).reshape(entry.shape)


def _read_table(data):
    """Every key -> value of a LevelDB-format table, as TensorFlow writes its index."""
    if len(data) < _FOOTER_BYTES or int.from_bytes(data[-8:], "little") != _TABLE_MAGIC:
        raise ValueError("it is not a TensorFlow checkpoint index (no table footer); "
                         "delete it and download it again")
    footer = data[-_FOOTER_BYTES:]
    _, pos = _read_block_handle(footer, 0)  # the metaindex block: TensorFlow leaves it empty
    index_handle, _ = _read_block_handle(footer, pos)
    table = {}
    # The index block maps the last key of each data block to that block's handle.
    for _, handle in _block_entries(_block_contents(data, index_handle)):
        data_handle, _ = _read_block_handle(handle, 0)
        table.update(_block_entries(_block_contents(data, data_handle)))
    return table


def _read_block_handle(buf, pos):
    """A block's (offset, size) in the file, stored as two varints."""
    offset, pos = _read_varint(buf, pos)
    size, pos = _read_varint(buf, pos)
    return (offset, size), pos


def _block_contents(data, handle):
    offset, size = handle
    end = offset + size
    if end + _TRAILER_BYTES > len(data) - _FOOTER_BYTES:
        raise ValueError("it is truncated; delete it and download it again")
    compression = data[end]
    if compression != 0:
        raise ValueError(f"it has a compressed block (type {compression}), which the NumPy "
                         "reader does not handle (TensorFlow writes checkpoint indexes "
                         "uncompressed); install TensorFlow and use reader='tensorflow'")
    return data[offset:end]


def _block_entries(block):
    """The (key, value) pairs of a table block.

    A block is a run of entries followed by restart offsets (uint32 each) and
    their count (uint32). Each entry is three varints (bytes shared with the
    previous key, bytes not shared, value length), the unshared key bytes and
    the value. Restart points only help seeking; reading in order ignores them.
    """
    if len(block) < 4:
        raise ValueError("it has a block too short to hold its restart count")
    num_restarts = int.from_bytes(block[-4:], "little")
    entries_end = len(block) - 4 * (num_restarts + 1)
    entries, key, pos = [], b"", 0
    while pos < entries_end:
        shared, pos = _read_varint(block, pos)
        unshared, pos = _read_varint(block, pos)
        value_size, pos = _read_varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + value_size]))
        pos += value_size
    if pos != entries_end:
        raise ValueError("it has a block whose entries overrun its restart array")
    return entries


def _read_varint(buf, pos):
    """Decode a base-128 varint (7 bits a byte, least significant first) at buf[pos]."""
    value = shift = 0
    while pos < len(buf):
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:  # the high bit marks "more bytes follow"
            return value, pos
        shift += 7
    raise ValueError("it ends inside a varint")


def _proto_fields(buf):
    """The (field number, value) pairs of a serialized protobuf message.

    Varint and fixed-size fields give ints, length-delimited fields bytes
    (a string, or a nested message to decode with this function again).
    """
    fields, pos = [], 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        field, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, pos = _read_varint(buf, pos)
        elif wire_type in (1, 5):  # fixed64, fixed32 (little-endian)
            width = 8 if wire_type == 1 else 4
            value, pos = int.from_bytes(buf[pos:pos + width], "little"), pos + width
        elif wire_type == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        else:
            raise ValueError(f"it holds a protobuf field of unsupported wire type {wire_type}")
        fields.append((field, value))
    if pos != len(buf):
        raise ValueError("it holds a truncated protobuf message")
    return fields


def _as_int64(value):
    # Negative int64 values arrive as 10-byte varints of their two's complement.
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_bundle_header(raw):
    """(num_shards, little_endian) from a BundleHeaderProto."""
    num_shards, endianness = 1, 0  # proto3 leaves defaults out: 1 shard, LITTLE (0)
    for field, value in _proto_fields(raw):
        if field == 1:
            num_shards = value
        elif field == 2:
            endianness = value
    return num_shards, endianness == 0


def _parse_bundle_entry(raw):
    """A BundleEntryProto: dtype=1, shape=2, shard_id=3, offset=4, size=5, slices=7."""
    values = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "sliced": False}
    for field, value in _proto_fields(raw):
        if field == 1:
            values["dtype"] = value
        elif field == 2:
            values["shape"] = _parse_tensor_shape(value)
        elif field in (3, 4, 5):
            values[("shard_id", "offset", "size")[field - 3]] = _as_int64(value)
        elif field == 7:  # a partitioned variable, stored as slices
            values["sliced"] = True
    return _BundleEntry(**values)


def _parse_tensor_shape(raw):
    """A TensorShapeProto's dims: repeated field 2, each a Dim whose field 1 is the size."""
    dims = []
    for field, value in _proto_fields(raw):
        if field == 2:
            sizes = [_as_int64(v) for f, v in _proto_fields(value) if f == 1]
            dims.append(sizes[0] if sizes else 0)
    return tuple(dims)
