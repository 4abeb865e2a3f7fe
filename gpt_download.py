"""The downloads the chapters call: the course's data sets and OpenAI's GPT-2 weights.

    download_data_file(name, data_dir="data")           one data set (a key of DATA_FILES)
    download_gpt2_tokenizer_files(models_dir="models")  GPT-2's encoder.json and vocab.bpe
    download_and_load_gpt2(size, models_dir="models")   GPT-2's weights as NumPy arrays
    load_gpt2_params_from_tf_ckpt(path, settings)       the same from a checkpoint on disk
                                                        (from gpt2_weights.py)

Downloads go to the real URLs. Set the environment variable LLM_COURSE_MIRROR to a
base URL (e.g. http://127.0.0.1:8765) to fetch every file from a mirror instead; it
holds each file under its mirror path (`the-verdict.txt`, `gpt2/124M/hparams.json`,
`huggingface/openai-community/gpt2/model.safetensors`).

Nothing downloaded is trusted unchecked: the data files by the size and SHA-256 in
DATA_FILES, GPT-2's files by their sizes, formats and the CRC32C checksum the index
stores for every tensor, the hub's files as download_and_load_gpt2_from_hub says.
A file that fails is deleted, and the error says in one line what was wrong.

This module says what is downloaded and what it must be; three hand-written modules
beside it do the rest: download_engine.py (verified, locked, resumable downloads with
bounded waits), gpt2_weights.py (GPT-2's weights from the files on disk) and
tf_checkpoint.py (TensorFlow's checkpoint format, read without TensorFlow). None of
them imports the chapters' code, so this module loads without torch.
"""

import json
import os
import re
import zipfile
from collections import namedtuple
from pathlib import Path

# DownloadError and CheckpointError are the errors callers catch from here.
from download_engine import (
    MIRROR_ENV, DownloadError, deadline_for, download_file, extract_zip_member, file_lock,
    file_problem, mirror_advice, source_urls,
)
from gpt2_weights import (
    check_tensor_shapes, gpt2_param_count, gpt2_tensor_shapes, load_gpt2_params_from_safetensors,
    load_gpt2_params_from_tf_ckpt, read_downloaded_json, read_gpt2_hparams, read_hub_config,
    safetensors_problem,
)
from tf_checkpoint import CheckpointError, DamagedData, read_index, shard_problem


def download_and_load_gpt2(model_size, models_dir="models", reader="numpy", source="openai"):
    """Download OpenAI's GPT-2 checkpoint `model_size` (once) and load its weights.

    `model_size` is "124M", "355M", "774M" or "1558M". The seven files land in
    `models_dir/model_size/`; files already there are not fetched again, so a second
    call works offline. Returns `(settings, params)`: `settings` is hparams.json as a
    dict, `params` the nested dict of NumPy arrays that `load_gpt2_params_from_tf_ckpt`
    describes. `reader` is passed on to it: keep the default "numpy" in any process
    that trains (tf_checkpoint.py says why).

    `source="huggingface"` takes the same weights from the Hugging Face hub instead
    (see download_and_load_gpt2_from_hub); the result has the same form, and `reader`
    does not apply.

    Every file is checked before it is trusted: hparams.json and the index must
    describe the same model; the weights file must have exactly the bytes the index
    describes and every tensor the CRC32C checksum the index stores; the tokenizer
    files of a checkpoint with OpenAI's hparams must be OpenAI's (SHA-256).
    """
    if source not in GPT2_SOURCES:
        raise ValueError(f"Unknown source {source!r}; choose one of: {', '.join(GPT2_SOURCES)}")
    if source == "huggingface":
        return download_and_load_gpt2_from_hub(model_size, models_dir)
    size = _checked_model_size(model_size)
    model_dir = Path(models_dir) / size
    settings = _download_openai_files(size, model_dir)
    try:
        params = load_gpt2_params_from_tf_ckpt(model_dir / "model.ckpt", settings, reader)
    except DamagedData as error:
        # Damaged on disk since it was downloaded and checked: never trust it again.
        error.path.unlink(missing_ok=True)
        raise CheckpointError(f"{error.problem} It was deleted; run again to download "
                              "it afresh.") from None
    return settings, params


def download_data_file(mirror_path, data_dir="data"):
    """Download one of the course's data sets (a key of DATA_FILES) into `data_dir`.

    Each file is checked against the size and SHA-256 recorded in DATA_FILES before
    it is trusted (a file already there too). "sms_spam_collection/SMSSpamCollection"
    is extracted from the downloaded zip. Returns the file's path.
    """
    if mirror_path not in DATA_FILES:
        known = ", ".join(sorted(DATA_FILES))
        raise ValueError(f"Unknown data file {mirror_path!r}; choose one of: {known}")
    spec = DATA_FILES[mirror_path]
    destination = Path(data_dir) / Path(mirror_path).name
    if spec.zip_member is not None:
        return _download_zip_member(spec, destination, data_dir)
    verify = _zip_verifier(mirror_path) if mirror_path.endswith(".zip") else None
    return download_file(source_urls(spec.urls, mirror_path), destination,
                         expected_size=spec.size, sha256=spec.sha256, max_size=spec.max_size,
                         verify=verify)


def download_gpt2_tokenizer_files(models_dir="models"):
    """Download GPT-2's two tokenizer files (once), checked by their SHA-256.

    They are the same for every model size, so they go where the 124M checkpoint's copies
    go, `models_dir/124M/`. Returns the paths of encoder.json and vocab.bpe.
    """
    model_dir = Path(models_dir) / "124M"
    return tuple(_download_gpt2_file("124M", name, model_dir, *GPT2_TOKENIZER_FILES[name])
                 for name in ("encoder.json", "vocab.bpe"))


def published_gpt2_hparams():
    """{size: hparams.json} of the four GPT-2 models OpenAI publishes ("124M" ... "1558M")."""
    return {size: dict(hparams) for size, hparams in _PUBLISHED_GPT2_HPARAMS.items()}


# ---------------------------------------------------------------------------
# What is downloaded, from where, and what it must be
# ---------------------------------------------------------------------------

# What one of the course's files must be, to be trusted. `size` and `sha256` pin
# the exact bytes; `max_size` caps a file whose exact size is not known.
DataFile = namedtuple("DataFile", "urls size sha256 max_size zip_member",
                      defaults=(None, None, None, None))

# The course's data sets: mirror path -> where to get them and what they must be.
DATA_FILES = {
    "the-verdict.txt": DataFile(
        urls=["https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/"
              "ch02/01_main-chapter-code/the-verdict.txt"],
        size=20_479,
        sha256="b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f"),
    "instruction-data.json": DataFile(
        urls=["https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/"
              "ch07/01_main-chapter-code/instruction-data.json"],
        size=203_524,
        sha256="7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944"),
    # The zip's own bytes differ between the UCI original and the mirror's copy, so it
    # is checked as a zip; the file extracted from it is checked by its hash.
    "sms_spam_collection/sms+spam+collection.zip": DataFile(
        urls=["https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
              "https://f001.backblazeb2.com/file/LLMs-from-scratch/sms%2Bspam%2Bcollection.zip"],
        max_size=5_000_000),
    "sms_spam_collection/SMSSpamCollection": DataFile(
        urls=None, size=477_907,
        sha256="7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        zip_member="sms_spam_collection/sms+spam+collection.zip"),
}

# The hparams.json of each size OpenAI published. The chapters' own table (MODEL_CONFIGS,
# chapter 4) says the same; tests/test_download.py checks that they agree.
_PUBLISHED_GPT2_HPARAMS = {
    "124M": {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12},
    "355M": {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 1024, "n_head": 16, "n_layer": 24},
    "774M": {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 1280, "n_head": 20, "n_layer": 36},
    "1558M": {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 1600, "n_head": 25, "n_layer": 48},
}
GPT2_SOURCES = ("openai", "huggingface")

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
# GPT-2's tokenizer files, the same for every size: (bytes, SHA-256).
GPT2_TOKENIZER_FILES = {
    "encoder.json": (1_042_301,
                     "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
    "vocab.bpe": (456_318, "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"),
}
# Caps for the files whose exact size depends on the checkpoint.
GPT2_MAX_SIZES = {"checkpoint": 4096, "hparams.json": 4096, "encoder.json": 10_000_000,
                  "vocab.bpe": 10_000_000, "model.ckpt.index": 10_000_000,
                  "model.ckpt.meta": 100_000_000}
GPT2_WEIGHTS_FILE = "model.ckpt.data-00000-of-00001"

# The same weights as one safetensors file (+ config.json) on the Hugging Face hub;
# the mirror path is huggingface/openai-community/{name}/{file}.
HF_REPO_NAMES = {"124M": "gpt2", "355M": "gpt2-medium", "774M": "gpt2-large",
                 "1558M": "gpt2-xl"}
HF_URL_TEMPLATE = "https://huggingface.co/openai-community/{name}/resolve/main/{file}"
# What the hub's files must be, by mirror path: (bytes, SHA-256). Only gpt2's weights are
# pinned: the hub shows the size and SHA-256 of model.safetensors (an LFS file), and we
# could confirm them for gpt2 alone. The other sizes' weights, and every config.json, are
# checked by content instead: config.json must hold the published hparams, and the
# safetensors header must list every tensor with the shape those hparams call for.
HF_PUBLISHED_FILES = {
    "huggingface/openai-community/gpt2/model.safetensors": (
        548_105_171, "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707"),
}
# A local JSON file {mirror path: {"size": bytes, "sha256": hex}} naming what a mirror's
# own hub files are (tools/make_gpt2_checkpoint.py --huggingface writes one for its random
# weights). Used only while LLM_COURSE_MIRROR is set; without it the published values hold.
MIRROR_MANIFEST_ENV = "LLM_COURSE_MIRROR_MANIFEST"


# ---------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------

def _zip_verifier(mirror_path):
    """A check that the file is a zip holding every member DATA_FILES extracts from it."""
    wanted = [Path(name).name for name, spec in DATA_FILES.items()
              if spec.zip_member == mirror_path]

    def verify(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            return f"it is not a zip file ({error})"
        missing = [name for name in wanted if name not in names]
        if missing:
            return (f"the zip holds no {missing[0]} (it holds: "
                    f"{', '.join(names[:5]) or 'nothing'})")
        return None
    return verify


def _download_zip_member(spec, destination, data_dir):
    """Extract a DATA_FILES member from its (downloaded) zip, verified and atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(destination, deadline_for(spec.size)):
        if destination.exists():
            if file_problem(destination, spec.size, spec.sha256, None) is None:
                return destination
            destination.unlink()
        zip_path = download_data_file(spec.zip_member, data_dir)
        try:
            extract_zip_member(zip_path, destination.name, destination,
                               expected_size=spec.size, sha256=spec.sha256)
        except DownloadError as error:
            zip_path.unlink(missing_ok=True)  # the zip is at fault: never reuse it
            raise DownloadError(f"{error}. {zip_path} was deleted; run again to download "
                                "it afresh. " + mirror_advice()) from None
    return destination


# ---------------------------------------------------------------------------
# GPT-2 from OpenAI: seven files, the weights in TensorFlow's checkpoint format
# ---------------------------------------------------------------------------

def gpt2_file_urls(model_size, file_name):
    """Where one GPT-2 checkpoint file is fetched from (the mirror alone when set)."""
    urls = [template.format(size=model_size, file=file_name)
            for template in GPT2_URL_TEMPLATES]
    return source_urls(urls, f"gpt2/{model_size}/{file_name}")


def _download_openai_files(size, model_dir):
    """Download (or check) the seven files of GPT-2 `size`; returns its hparams."""
    # hparams.json and the index first: they say what the weights file must hold.
    settings, entries = _download_gpt2_description(size, model_dir)
    published = settings == published_gpt2_hparams()[size]
    for file_name in GPT2_FILES:
        if file_name in ("hparams.json", "model.ckpt.index", GPT2_WEIGHTS_FILE):
            continue
        expected_size = sha256 = None
        if published and file_name in GPT2_TOKENIZER_FILES:
            expected_size, sha256 = GPT2_TOKENIZER_FILES[file_name]
        _download_gpt2_file(size, file_name, model_dir, expected_size, sha256)
    weights_bytes = 4 * gpt2_param_count(settings)  # float32
    # Its checksums are checked after each download, and again by the reader at each load.
    _download_gpt2_file(size, GPT2_WEIGHTS_FILE, model_dir, weights_bytes,
                        verify=lambda path: shard_problem(path, entries, 0),
                        verify_existing=False)
    return settings


def _download_gpt2_file(model_size, file_name, model_dir, expected_size=None, sha256=None,
                        verify=None, verify_existing=True):
    if verify is None:
        verify = _GPT2_FILE_CHECKS.get(file_name)
    binary = file_name.startswith("model.ckpt")  # the others are text files
    return download_file(gpt2_file_urls(model_size, file_name), model_dir / file_name,
                         expected_size=expected_size, binary=binary, sha256=sha256,
                         max_size=GPT2_MAX_SIZES.get(file_name), verify=verify,
                         verify_existing=verify_existing)


def _download_gpt2_description(size, model_dir):
    """(hparams, index entries), downloaded if needed, that describe the same model.

    A wrong hparams.json or index already on disk is fetched again (both are small)
    rather than letting it condemn a good weights file.
    """
    for attempt in range(2):
        fresh = not (model_dir / "hparams.json").exists()
        hparams_path = _download_gpt2_file(size, "hparams.json", model_dir)
        settings = read_gpt2_hparams(hparams_path)
        index_path = _download_gpt2_file(size, "model.ckpt.index", model_dir)
        try:
            _, entries = read_index(index_path)
        except ValueError as error:  # it passed the check when it was downloaded
            index_path.unlink(missing_ok=True)
            raise CheckpointError(f"Cannot read {index_path}: {error}. It was deleted; run "
                                  "again to download it afresh.") from None
        shapes = {name: entry.shape for name, entry in entries.items()}
        try:
            check_tensor_shapes(shapes, gpt2_tensor_shapes(settings),
                                index_path.parent / "model.ckpt", settings)
            return settings, entries
        except CheckpointError as error:
            hparams_path.unlink(missing_ok=True)
            index_path.unlink(missing_ok=True)
            if attempt == 1 or fresh:
                raise CheckpointError(
                    f"hparams.json and model.ckpt.index of GPT-2 {size} describe different "
                    f"models ({error}). Both were deleted. " + mirror_advice()) from None
    raise AssertionError("unreachable")


def _verify_text_file(pattern):
    def verify(path):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return "it is not UTF-8 text"
        if not re.match(pattern, text):
            return "it does not have the expected content (an error page or wrong file?)"
        return None
    return verify


def _verify_hparams_file(path):
    try:
        read_gpt2_hparams(path)
    except CheckpointError as error:
        return str(error)
    return None


def _verify_json_object(path):
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"it is not JSON ({error})"
    return None if isinstance(value, dict) else "it is not a JSON object"


def _verify_index_file(path):
    try:
        read_index(path)
    except ValueError as error:
        return str(error)
    return None


_GPT2_FILE_CHECKS = {
    "checkpoint": _verify_text_file(r'model_checkpoint_path: ".+"'),
    "hparams.json": _verify_hparams_file,
    "encoder.json": _verify_json_object,
    "vocab.bpe": _verify_text_file(r"#version"),
    "model.ckpt.index": _verify_index_file,
}


def _checked_model_size(model_size):
    size = str(model_size).strip().upper()
    sizes = published_gpt2_hparams()
    if size not in sizes:
        raise ValueError(f"Unknown GPT-2 size {model_size!r}; "
                         f"choose one of: {', '.join(sizes)}")
    return size


# ---------------------------------------------------------------------------
# GPT-2 from the Hugging Face hub: config.json and model.safetensors
# ---------------------------------------------------------------------------

def download_and_load_gpt2_from_hub(model_size, models_dir="models"):
    """Download GPT-2 `model_size` from the Hugging Face hub (once) and load its weights.

    The hub's `openai-community/gpt2` (124M), `-medium` (355M), `-large` (774M) and
    `-xl` (1558M) hold OpenAI's weights as one `model.safetensors` file plus a
    `config.json`; both land in `models_dir/<hub name>/` (e.g. `models/gpt2`). Returns
    `(settings, params)` of the same form as the OpenAI files give: `settings` with
    hparams.json's keys (read from config.json), `params` the nested dict that
    `load_gpt2_params_from_tf_ckpt` describes, so `load_weights_into_gpt` takes it as is.

    Checks: config.json must hold the published hparams of that size; model.safetensors
    must list every tensor with the shape those call for, and (124M, whose hub file we
    could pin) have the published size and SHA-256. With LLM_COURSE_MIRROR set, a file
    named in $LLM_COURSE_MIRROR_MANIFEST is checked by the size and SHA-256 given there.
    """
    size = _checked_model_size(model_size)
    name = HF_REPO_NAMES[size]
    model_dir = Path(models_dir) / name
    manifest = _mirror_manifest()

    config_path = _download_hub_file(name, "config.json", model_dir, manifest,
                                     verify=_hub_config_verifier(size, name, manifest))
    settings = read_hub_config(config_path)
    weights_path = _download_hub_file(name, "model.safetensors", model_dir, manifest,
                                      verify=lambda path: safetensors_problem(path, settings),
                                      max_size=_max_safetensors_bytes(settings))
    return settings, load_gpt2_params_from_safetensors(weights_path, settings)


def hub_file_urls(name, file_name):
    """Where one of the hub's GPT-2 files is fetched from (the mirror alone when set)."""
    return source_urls([HF_URL_TEMPLATE.format(name=name, file=file_name)],
                       hub_mirror_path(name, file_name))


def hub_mirror_path(name, file_name):
    return f"huggingface/openai-community/{name}/{file_name}"


def _download_hub_file(name, file_name, model_dir, manifest, verify, max_size=100_000):
    # Not huggingface_hub's hf_hub_download: it needs a server that speaks the hub's API
    # (X-Repo-Commit and ETag headers), which a plain LLM_COURSE_MIRROR is not, and it
    # has neither size caps nor an overall deadline.
    mirror_path = hub_mirror_path(name, file_name)
    expected_size, sha256 = manifest.get(mirror_path) or HF_PUBLISHED_FILES.get(
        mirror_path, (None, None))
    return download_file(hub_file_urls(name, file_name), model_dir / file_name,
                         expected_size=expected_size, sha256=sha256, max_size=max_size,
                         binary=file_name.endswith(".safetensors"), verify=verify)


def _mirror_manifest():
    """{mirror path: (size, sha256)} from $LLM_COURSE_MIRROR_MANIFEST, if a mirror is set."""
    path = os.environ.get(MIRROR_MANIFEST_ENV, "").strip()
    if not path or not os.environ.get(MIRROR_ENV, "").strip():
        return {}
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
        return {mirror_path: (int(entry["size"]), str(entry["sha256"]).lower())
                for mirror_path, entry in entries.items()}
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"{MIRROR_MANIFEST_ENV}={path}: cannot read it as a JSON object "
                         f'{{mirror path: {{"size": bytes, "sha256": hex}}}} ({error})') from None


def _hub_config_verifier(size, name, manifest):
    """config.json must be readable and, unless the manifest pins it, of the published size."""
    pinned = hub_mirror_path(name, "config.json") in manifest

    def verify(path):
        try:
            settings = read_hub_config(path)
        except CheckpointError as error:
            return str(error)
        published = published_gpt2_hparams()[size]
        if not pinned and settings != published:
            return f"it describes {settings}, not the published GPT-2 {size} ({published})"
        return None
    return verify


def _max_safetensors_bytes(settings):
    """A cap on model.safetensors: float32 weights, a tied head, the mask buffers, a header."""
    buffers = settings["n_layer"] * settings["n_ctx"] ** 2  # attn.bias: one causal mask per block
    head = settings["n_vocab"] * settings["n_embd"]          # lm_head.weight, if stored
    return 4 * (gpt2_param_count(settings) + head + buffers) + 10_000_000


# ---------------------------------------------------------------------------
# Llama 3.2 and Qwen 3 from the Hugging Face hub (Appendix G)
# ---------------------------------------------------------------------------

HUB_URL_TEMPLATE = "https://huggingface.co/{repo}/resolve/main/{file}"
# The published repositories whose weights are split into shards that
# model.safetensors.index.json lists; the others hold one model.safetensors.
SHARDED_HUB_MODELS = {"meta-llama/Llama-3.2-3B", "meta-llama/Llama-3.2-3B-Instruct",
                      "Qwen/Qwen3-1.7B", "Qwen/Qwen3-1.7B-Base"}
HUB_REPO_PATTERN = re.compile(r"\w[\w.-]*/\w[\w.-]*")  # owner/name, no ".." or "/x"
SHARD_NAME_PATTERN = re.compile(r"[\w.-]+\.safetensors")
# No hash of these files could be confirmed offline: a mirror's manifest pins them, and
# otherwise each file must be a readable safetensors file below this cap (the hub's
# shards are at most 5 GB), whose tensors the loader then checks by name and shape.
MAX_HUB_SHARD_BYTES = 10_000_000_000


def download_hub_model(repo_id, models_dir="models", sharded=None):
    """Download a Llama 3 or Qwen 3 model's config.json and weights from the hub (once).

    `repo_id` is the hub's name, e.g. "meta-llama/Llama-3.2-1B" or "Qwen/Qwen3-0.6B";
    the files land in `models_dir/<repo_id>/`. `sharded` says whether the weights are
    split into shards listed in model.safetensors.index.json (default: as
    SHARDED_HUB_MODELS says). Returns `(config, weight_paths)`: config.json as a dict
    and the paths of the safetensors files. With LLM_COURSE_MIRROR set, the files come
    from `huggingface/<repo_id>/<file>` on the mirror, checked by the size and SHA-256
    that $LLM_COURSE_MIRROR_MANIFEST gives for them.

    Meta's Llama repositories are gated: accept the license on the model's hub page
    and set HF_TOKEN to an access token (https://huggingface.co/settings/tokens).
    """
    if not HUB_REPO_PATTERN.fullmatch(str(repo_id)):
        raise ValueError(f"{repo_id!r} is not a hub repository name like 'Qwen/Qwen3-0.6B'")
    model_dir = Path(models_dir) / repo_id
    manifest = _mirror_manifest()
    if sharded is None:
        sharded = repo_id in SHARDED_HUB_MODELS

    def fetch(file_name, verify, max_size=1_000_000):
        mirror_path = f"huggingface/{repo_id}/{file_name}"
        expected_size, sha256 = manifest.get(mirror_path, (None, None))
        urls = source_urls([HUB_URL_TEMPLATE.format(repo=repo_id, file=file_name)], mirror_path)
        return download_file(urls, model_dir / file_name, expected_size=expected_size,
                             sha256=sha256, max_size=max_size, verify=verify,
                             binary=file_name.endswith(".safetensors"))

    config = read_downloaded_json(fetch("config.json", _verify_json_object))
    shard_names = ["model.safetensors"]
    if sharded:
        index_path = fetch("model.safetensors.index.json", _verify_shard_index, 10_000_000)
        shard_names = _shard_names(read_downloaded_json(index_path))
    paths = [fetch(name, _verify_safetensors_file, MAX_HUB_SHARD_BYTES) for name in shard_names]
    return config, paths


def _shard_names(index):
    return sorted(set(index["weight_map"].values()))


def _verify_shard_index(path):
    try:
        names = _shard_names(read_downloaded_json(path))
    except (CheckpointError, KeyError, TypeError, AttributeError):
        return "it is not a safetensors index (a JSON object with a weight_map)"
    bad = [name for name in names if not SHARD_NAME_PATTERN.fullmatch(str(name))]
    return f"it names a shard {bad[0]!r} that is not a plain .safetensors file name" if bad else None


def _verify_safetensors_file(path):
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework="numpy") as file:
            file.keys()
    except (SafetensorError, OSError, ValueError) as error:
        return f"it is not a readable safetensors file ({error})"
    return None
