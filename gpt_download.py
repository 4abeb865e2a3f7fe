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

The same weights are also on the Hugging Face hub as one `model.safetensors`
file per size (mirror path `huggingface/openai-community/gpt2/model.safetensors`);
`download_and_load_gpt2(..., source="huggingface")` reads those instead.

Nothing downloaded is trusted unchecked: the data files by the size and SHA-256
in DATA_FILES, GPT-2's files by their sizes, formats and (the weights) the CRC32C
checksum the index stores for every tensor, which the NumPy reader also checks at
every load; the hub's files as download_and_load_gpt2_from_hub describes. A file
that fails is deleted and the error says what was wrong. One
process at a time downloads a file (a lock file beside it), and every wait is
bounded (see download_file).
"""

import hashlib
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections import namedtuple
from http.client import HTTPException, IncompleteRead
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from tqdm import tqdm  # plain text bars: tqdm.auto needs ipywidgets in notebooks

MIRROR_ENV = "LLM_COURSE_MIRROR"
# Bounded waits, in seconds (environment variables override the defaults):
TIMEOUT_ENV = "LLM_COURSE_DOWNLOAD_TIMEOUT_S"    # silence allowed per read (default 15)
DEADLINE_ENV = "LLM_COURSE_DOWNLOAD_DEADLINE_S"  # a whole file (default: from its size)
DEFAULT_TIMEOUT_S = 15.0
MIN_RATE_BYTES_S = 100_000  # the default deadline allows this slow a connection...
DEADLINE_BASE_S = 60.0      # ...plus this much time
UNKNOWN_SIZE_DEADLINE_S = 600.0

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
CHECKPOINT_READERS = ("numpy", "tensorflow")
GPT2_SOURCES = ("openai", "huggingface")

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

CHUNK_BYTES = 1 << 20
RETRYABLE_HTTP_CODES = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """A download failed; the message says which URLs were tried and what to do."""


class _BadBody(DownloadError):
    """The server sent the wrong thing; resuming it would only extend the damage."""


class _Stalled(DownloadError):
    """The server went silent, or the overall deadline passed: try no more."""


class CheckpointError(ValueError):
    """A checkpoint is damaged, unreadable, or does not match its hparams."""


class _DamagedData(CheckpointError):
    """A tensor's bytes do not match the checksum the index stores for them."""

    def __init__(self, problem, advice, path):
        super().__init__(f"{problem} {advice}")
        self.problem = problem  # what is wrong, without the advice
        self.path = path


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
    """Download one of the course's data sets (a key of DATA_FILES) into `data_dir`.

    Each file is checked against the size and SHA-256 recorded in DATA_FILES before
    it is trusted (a file already there too). "sms_spam_collection/SMSSpamCollection"
    is extracted from the downloaded zip.
    """
    if mirror_path not in DATA_FILES:
        known = ", ".join(sorted(DATA_FILES))
        raise ValueError(f"Unknown data file {mirror_path!r}; choose one of: {known}")
    spec = DATA_FILES[mirror_path]
    destination = Path(data_dir) / Path(mirror_path).name
    if spec.zip_member is not None:
        return _download_zip_member(spec, mirror_path, destination, data_dir)
    verify = _zip_verifier(mirror_path) if mirror_path.endswith(".zip") else None
    return download_file(source_urls(spec.urls, mirror_path), destination,
                         expected_size=spec.size, sha256=spec.sha256, max_size=spec.max_size,
                         verify=verify)


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


def _download_zip_member(spec, mirror_path, destination, data_dir):
    """Extract a DATA_FILES member from its (downloaded) zip, verified and atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with _lock_for(destination, _deadline_for(spec.size)):
        if destination.exists():
            problem = _check_file(destination, spec.size, spec.sha256, None)
            if problem is None:
                return destination
            destination.unlink()
        zip_path = download_data_file(spec.zip_member, data_dir)
        try:
            extract_zip_member(zip_path, destination.name, destination,
                               expected_size=spec.size, sha256=spec.sha256)
        except DownloadError as error:
            zip_path.unlink(missing_ok=True)  # the zip is at fault: never reuse it
            raise DownloadError(f"{error}. {zip_path} was deleted; run again to download "
                                "it afresh. " + _mirror_advice()) from None
    return destination


def extract_zip_member(zip_path, member, destination, expected_size=None, sha256=None,
                       max_size=None):
    """Write one member of a zip file to `destination`, all or nothing.

    `member` must be a plain file name (no folders, no "..") that the zip holds.
    The bytes go to a temporary file beside `destination`, which is renamed only
    once they are complete and, when given, of `expected_size` and `sha256`.
    Writing stops at `expected_size` (or `max_size`) bytes, whatever size the zip
    claims, so a zip bomb cannot fill the disk. Raises DownloadError.
    """
    destination = Path(destination)
    if not member or Path(member).name != member or member in (".", ".."):
        raise ValueError(f"refusing to extract {member!r}: give a plain file name")
    limit = expected_size if expected_size is not None else max_size
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                names = ", ".join(archive.namelist()[:5]) or "nothing"
                raise DownloadError(f"{Path(zip_path).name} holds no {member} "
                                    f"(it holds: {names})") from None
            if limit is not None and info.file_size > limit:
                raise DownloadError(f"{member} in {Path(zip_path).name} claims "
                                    f"{info.file_size:,} bytes, more than the {limit:,} expected")
            digest, written = hashlib.sha256(), 0
            with archive.open(info) as source, open(temporary, "wb") as out:
                while chunk := source.read(CHUNK_BYTES):
                    written += len(chunk)
                    if limit is not None and written > limit:
                        raise DownloadError(f"{member} in {Path(zip_path).name} holds more "
                                            f"than the {limit:,} bytes expected")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        if expected_size is not None and written != expected_size:
            raise DownloadError(f"{member} has {written:,} bytes, expected {expected_size:,}")
        if sha256 is not None and digest.hexdigest() != sha256:
            raise DownloadError(f"{member}'s SHA-256 is {digest.hexdigest()}, "
                                f"expected {sha256}")
        os.replace(temporary, destination)
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise DownloadError(f"{Path(zip_path).name} is damaged ({error})") from None
    finally:
        temporary.unlink(missing_ok=True)
    return destination


def download_file(urls, destination, expected_size=None, binary=False, sha256=None,
                  max_size=None, verify=None, verify_existing=True, retries=4, backoff_s=1.0,
                  timeout_s=None, deadline_s=None):
    """Download the first of `urls` that works to `destination` and return its path.

    Nothing is trusted unchecked. A file is renamed to `destination` only after it
    passed every check given: `expected_size` (exact bytes), `sha256`, `verify`
    (a function of the path returning None, or what is wrong with the file),
    `binary=True` (not an HTML or text page); a file already at `destination` is
    checked the same way (`verify` only if `verify_existing`) and replaced if it
    fails. A file that fails is deleted, and the error says what was wrong.

    Bytes arrive in `<destination>.part`, which one process at a time may write (a
    lock file `.<name>.lock` beside it; a second process waits for the first and
    then uses its file). A dropped connection is retried with back-off and resumed
    with an HTTP Range request; a resumed file is checked like any other, and
    downloaded afresh once if the check fails.

    Waits are bounded: `timeout_s` (default 15 s, or $LLM_COURSE_DOWNLOAD_TIMEOUT_S)
    for each read, and a silent server is not retried; `deadline_s` for the whole
    file (default: 60 s plus 10 s per MB expected, or $LLM_COURSE_DOWNLOAD_DEADLINE_S).
    Writing stops as soon as a body exceeds `expected_size` (or `max_size`).
    """
    if isinstance(urls, str):
        urls = [urls]
    destination = Path(destination)
    timeout_s = timeout_s if timeout_s is not None else _env_seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)
    if deadline_s is None:
        deadline_s = _env_seconds(DEADLINE_ENV, None) or _deadline_for(expected_size or max_size)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    limit = expected_size if expected_size is not None else max_size

    with _lock_for(destination, deadline_s):
        deadline = time.monotonic() + deadline_s  # from now: waiting for the lock is not counted
        if destination.exists():
            if _check_file(destination, expected_size, sha256,
                           verify if verify_existing else None, binary) is None:
                return destination
            destination.unlink()  # damaged, stale or unfinished by older code: fetch again
        failures = []
        for url in urls:
            if time.monotonic() > deadline:
                failures.append(f"{url}: not tried, the deadline for this file had passed")
                continue
            for fresh_start in (False, True):
                resumed = partial.exists() and partial.stat().st_size > 0
                try:
                    _download_with_retries(url, partial, retries, backoff_s, timeout_s,
                                           deadline, limit)
                    problem = _check_file(partial, expected_size, sha256, verify, binary)
                    if problem is not None:
                        raise _BadBody(problem)
                except _BadBody as error:
                    partial.unlink(missing_ok=True)
                    if resumed and not fresh_start:
                        continue  # maybe only the old bytes were bad: once more from byte 0
                    failures.append(f"{url}: {error}")
                except (DownloadError, OSError, HTTPException) as error:
                    # An HTTP error status or a network failure says nothing against the
                    # bytes already in the partial file: keep them for the next URL or call.
                    failures.append(f"{url}: {_describe(error)}")
                else:
                    partial.replace(destination)
                    return destination
                break
    raise DownloadError(f"Could not download {destination.name}.\n  "
                        + "\n  ".join(failures) + "\n" + _download_advice(partial))


def _env_seconds(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{name}={value!r}: give a positive number of seconds")
    return seconds


def _deadline_for(size):
    if size is None:
        return UNKNOWN_SIZE_DEADLINE_S
    return DEADLINE_BASE_S + size / MIN_RATE_BYTES_S


def _lock_for(destination, wait_s):
    """A lock held while `destination` is checked, downloaded or extracted."""
    lock_path = destination.with_name(f".{destination.name}.lock")
    return _WaitingLock(lock_path, destination, wait_s)


class _WaitingLock:
    """filelock's FileLock, saying so when it waits for another process."""

    def __init__(self, lock_path, destination, wait_s):
        self._lock = FileLock(str(lock_path))
        self._destination = destination
        self._wait_s = wait_s

    def __enter__(self):
        try:
            self._lock.acquire(timeout=0)
            return self
        except Timeout:
            pass
        print(f"Another process is downloading {self._destination}; waiting for it "
              f"(at most {self._wait_s:.0f} s)...", file=sys.stderr, flush=True)
        try:
            self._lock.acquire(timeout=self._wait_s)
        except Timeout:
            raise DownloadError(
                f"Another process has been downloading {self._destination} for more than "
                f"{self._wait_s:.0f} s. Let it finish (or stop it), then run again.") from None
        return self

    def __exit__(self, *exc_info):
        self._lock.release()


def _describe(error):
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(error, urllib.error.URLError):
        return f"cannot connect ({error.reason})"
    return str(error) or type(error).__name__


def _mirror_advice():
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return (f"{MIRROR_ENV} is set to {mirror}: check that the mirror is running "
                "and holds this file, or unset it to use the real URLs.")
    return f"Check your internet connection, or set {MIRROR_ENV} to a mirror that has the file."


def _download_advice(partial):
    advice = _mirror_advice()
    if partial.exists():
        advice += (f" {partial} keeps the {partial.stat().st_size:,} bytes received "
                   "so far; calling again resumes from there.")
    return advice


def _download_with_retries(url, partial, retries, backoff_s, timeout_s, deadline, limit):
    """Fetch `url` into `partial`, retrying transient failures with exponential back-off."""
    for attempt in range(retries + 1):
        before = partial.stat().st_size if partial.exists() else 0
        try:
            _resume_download(url, partial, timeout_s, deadline, limit)
            return
        except urllib.error.HTTPError as error:
            error.close()
            if error.code not in RETRYABLE_HTTP_CODES or attempt == retries:
                raise DownloadError(f"HTTP {error.code} {error.reason}") from None
        except (OSError, HTTPException) as error:  # URLError, timeouts, resets, short bodies
            silent = isinstance(error, (socket.timeout, TimeoutError)) or isinstance(
                getattr(error, "reason", None), (socket.timeout, TimeoutError))
            after = partial.stat().st_size if partial.exists() else 0
            if silent and after == before:
                # A server that says nothing for timeout_s is not waited for again.
                raise _Stalled(f"no data for {timeout_s:g} s; gave up") from None
            if attempt == retries:
                raise
        pause = backoff_s * 2 ** attempt
        if time.monotonic() + pause > deadline:
            raise _Stalled("the deadline for this file passed; gave up")
        time.sleep(pause)


def _resume_download(url, partial, timeout_s, deadline, limit):
    """Append the rest of `url` to `partial`, asking only for the missing bytes."""
    have = partial.stat().st_size if partial.exists() else 0
    if limit is not None and have > limit:
        raise _BadBody(f"{partial.name} holds {have:,} bytes, more than the {limit:,} expected")
    request = urllib.request.Request(url, headers={"User-Agent": "llm-course"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    remaining_s = deadline - time.monotonic()
    if remaining_s <= 0:
        raise _Stalled("the deadline for this file passed; gave up")
    try:
        response = urllib.request.urlopen(request, timeout=min(timeout_s, remaining_s))
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            # "Range not satisfiable": fine if the partial file already holds every byte.
            total = _content_range(error.headers)[1]
            error.close()
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
        try:
            total = have + int(remaining) if remaining is not None else None
        except ValueError:
            raise _BadBody(f"the server sent a bad Content-Length ({remaining!r})") from None
        if total is not None and limit is not None and total > limit:
            raise _BadBody(f"the server offers {total:,} bytes, more than the "
                           f"{limit:,} expected")
        with open(partial, "ab" if have else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True,
            desc=partial.name.removesuffix(".part"), leave=False,
        ) as progress:
            size = have
            while True:
                if time.monotonic() > deadline:
                    raise _Stalled(f"the deadline for this file passed after {size:,} bytes; "
                                   f"gave up (set {DEADLINE_ENV} to allow longer)")
                # read1: whatever has arrived (up to a chunk), so a trickle can't hold
                # this loop past the deadline.
                chunk = response.read1(CHUNK_BYTES)
                if not chunk:
                    break
                if limit is not None and size + len(chunk) > limit:
                    raise _BadBody(f"the server sent more than the {limit:,} bytes expected")
                out.write(chunk)
                size += len(chunk)
                progress.update(len(chunk))
        if total is not None and size < total:
            # The connection ended early (http.client does not always say so).
            raise IncompleteRead(b"", total - size)


def _content_range(headers):
    """(first byte, total size) from a Content-Range header; None where not stated."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)",
                         (headers.get("Content-Range") or "").strip())
    if not match:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total != "*" else None)


def _check_file(path, expected_size, sha256, verify, binary=False):
    """None if `path` passes every check given, else what is wrong with it."""
    size = path.stat().st_size
    head = _read_head(path)
    if expected_size is not None and size != expected_size:
        page = " (it looks like an HTML or text page)" if _looks_like_page(head) else ""
        return f"got {size:,} bytes, expected {expected_size:,}{page}"
    if binary and _looks_like_page(head):
        return ("got an HTML or text page where a data file was expected "
                "(a login page, error page or wrong URL?)")
    if sha256 is not None:
        digest = _sha256(path)
        if digest != sha256:
            return f"its SHA-256 is {digest}, expected {sha256} (a damaged or different file)"
    if verify is not None:
        return verify(path)
    return None


def _read_head(path, size=512):
    with open(path, "rb") as f:
        return f.read(size)


def _looks_like_page(head):
    """True for the start of an HTML page or a short plain-text message ("Not Found")."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<!--",
                        b"<title", b"<h1", b"<p>", b"<error")):
        return True
    if not text:
        return True  # an empty body is never one of the files
    # Plain text only: every byte printable ASCII or whitespace.
    return all(32 <= b < 127 or b in b"\t\r\n" for b in head)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# GPT-2: download and load
# ---------------------------------------------------------------------------

def download_and_load_gpt2(model_size, models_dir="models", reader="numpy", source="openai"):
    """Download OpenAI's GPT-2 checkpoint `model_size` (once) and load its weights.

    `source="huggingface"` takes the same weights from the Hugging Face hub instead
    (see download_and_load_gpt2_from_hub); the result has the same form, and `reader`
    does not apply.

    The seven files land in `models_dir/model_size/`; files already there are
    not fetched again, so a second call works offline. Returns
    `(settings, params)`: `settings` is hparams.json as a dict, `params` the
    nested dict of NumPy arrays that `load_gpt2_params_from_tf_ckpt` describes.
    `reader` is passed on to it: keep the default "numpy" in any process that
    trains (see this module's docstring).

    Every file is checked before it is trusted: hparams.json and the index must
    describe the same model; the weights file must have exactly the bytes the
    index describes and every tensor the CRC32C checksum the index stores;
    the tokenizer files of a checkpoint with OpenAI's hparams must be OpenAI's
    (SHA-256). A file that fails is deleted and the error says so.
    """
    if source not in GPT2_SOURCES:
        raise ValueError(f"Unknown source {source!r}; choose one of: {', '.join(GPT2_SOURCES)}")
    if source == "huggingface":
        return download_and_load_gpt2_from_hub(model_size, models_dir)
    size = _checked_model_size(model_size)
    model_dir = Path(models_dir) / size
    # hparams.json and the index first: they say what the weights file must hold.
    settings, entries = _download_gpt2_description(size, model_dir)
    published = settings == published_gpt2_hparams()[size]
    data_name = "model.ckpt.data-00000-of-00001"
    for file_name in GPT2_FILES:
        if file_name in ("hparams.json", "model.ckpt.index", data_name):
            continue
        expected_size = sha256 = None
        if published and file_name in GPT2_TOKENIZER_FILES:
            expected_size, sha256 = GPT2_TOKENIZER_FILES[file_name]
        _download_gpt2_file(size, file_name, model_dir, expected_size, sha256)
    weights_bytes = 4 * gpt2_param_count(settings)  # float32
    # Its checksums are checked after each download, and again by the reader at each load.
    _download_gpt2_file(size, data_name, model_dir, weights_bytes,
                        verify=lambda path: _verify_shard(path, entries, 0), verify_existing=False)
    try:
        params = load_gpt2_params_from_tf_ckpt(model_dir / "model.ckpt", settings, reader)
    except _DamagedData as error:
        # Damaged on disk since it was downloaded and checked: never trust it again.
        error.path.unlink(missing_ok=True)
        raise CheckpointError(f"{error.problem} It was deleted; run again to download "
                              "it afresh.") from None
    return settings, params


def gpt2_file_urls(model_size, file_name):
    """Where one GPT-2 checkpoint file is fetched from (the mirror alone when set)."""
    urls = [template.format(size=model_size, file=file_name)
            for template in GPT2_URL_TEMPLATES]
    return source_urls(urls, f"gpt2/{model_size}/{file_name}")


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
            _, entries = _read_index(index_path)
        except ValueError as error:  # it passed the check when it was downloaded
            index_path.unlink(missing_ok=True)
            raise CheckpointError(f"Cannot read {index_path}: {error}. It was deleted; run "
                                  "again to download it afresh.") from None
        shapes = {name: entry.shape for name, entry in entries.items()}
        try:
            _check_tensor_shapes(shapes, _gpt2_tensor_shapes(settings), index_path.parent / "model.ckpt",
                                 settings)
            return settings, entries
        except CheckpointError as error:
            hparams_path.unlink(missing_ok=True)
            index_path.unlink(missing_ok=True)
            if attempt == 1 or fresh:
                raise CheckpointError(
                    f"hparams.json and model.ckpt.index of GPT-2 {size} describe different "
                    f"models ({error}). Both were deleted. " + _mirror_advice()) from None
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
        _read_index(path)
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


def published_gpt2_hparams():
    """{size: hparams.json} of the four GPT-2 models OpenAI publishes ("124M" ... "1558M").

    Built from the course's one size table, MODEL_CONFIGS (chapter 4). It is imported
    here, when needed, rather than at the top of this module: previous_chapters imports
    this module, and downloading data files must not wait for torch to load.
    """
    from previous_chapters import MODEL_CONFIGS, gpt2_config, gpt2_model_size

    hparams = {}
    for model_name in MODEL_CONFIGS:
        config = gpt2_config(model_name)
        hparams[gpt2_model_size(model_name)] = {
            "n_vocab": config["vocab_size"], "n_ctx": config["context_length"],
            "n_embd": config["emb_dim"], "n_head": config["n_heads"], "n_layer": config["n_layers"]}
    return hparams


def _checked_model_size(model_size):
    size = str(model_size).strip().upper()
    sizes = published_gpt2_hparams()
    if size not in sizes:
        raise ValueError(f"Unknown GPT-2 size {model_size!r}; "
                         f"choose one of: {', '.join(sizes)}")
    return size


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
                                      verify=lambda path: _safetensors_problem(path, settings),
                                      max_size=_max_safetensors_bytes(settings))
    return settings, load_gpt2_params_from_safetensors(weights_path, settings)


def hub_file_urls(name, file_name):
    """Where one of the hub's GPT-2 files is fetched from (the mirror alone when set)."""
    return source_urls([HF_URL_TEMPLATE.format(name=name, file=file_name)],
                       hub_mirror_path(name, file_name))


def hub_mirror_path(name, file_name):
    return f"huggingface/openai-community/{name}/{file_name}"


def _download_hub_file(name, file_name, model_dir, manifest, verify, max_size=100_000):
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
    _check_hparams(settings, f"{path} (vocab_size, n_positions, n_embd, n_head, n_layer)")
    return settings


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


def _safetensors_problem(path, settings):
    """None if `path` is a safetensors file holding GPT-2's float32 tensors of these
    settings' shapes; else what is wrong (for download_file's `verify`)."""
    try:
        _read_safetensors(path, settings, read_values=False)
    except CheckpointError as error:
        return str(error)
    return None


def _read_safetensors(path, settings, read_values=True):
    """{OpenAI tensor name: array} from a hub model.safetensors (shapes checked first)."""
    from safetensors import SafetensorError, safe_open

    expected = {name: shape[1:] if len(shape) == 3 else shape  # no 1x1-convolution axis
                for name, shape in _gpt2_tensor_shapes(settings).items()}
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


def load_gpt2_params_from_safetensors(path, settings):
    """Read the hub's model.safetensors into the nested dict load_gpt2_params_from_tf_ckpt
    returns. The hub stores the linear layers as (d_in, d_out) matrices, as OpenAI did,
    so nothing is transposed."""
    _check_hparams(settings, "settings")
    params = {"blocks": [{} for _ in range(settings["n_layer"])]}
    for name, array in _read_safetensors(Path(path), settings).items():
        _place_tensor(params, name, array)
    return params


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
_BundleEntry = namedtuple("_BundleEntry", "dtype shape shard_id offset size sliced crc32c")

_DT_FLOAT = 1           # TensorFlow's DataType enum value for float32
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48      # two block handles (varints), zero padding, then the magic number
_TRAILER_BYTES = 5      # after each block: compression type (1 byte) and a CRC (4 bytes)
_CRC_MASK_DELTA = 0xA282EAD8  # TensorFlow (like LevelDB) stores CRCs "masked"


def _masked_crc32c(data):
    """TensorFlow's masked CRC32C of `data`: the CRC rotated right by 15 bits plus a constant."""
    import google_crc32c  # a C implementation: about 1 GB/s

    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def _read_index(index_path):
    """(num_shards, {tensor name: _BundleEntry}) of a checkpoint index; ValueError if bad."""
    table = _read_table(Path(index_path).read_bytes())
    if b"" not in table:
        raise ValueError("it has no bundle header")
    num_shards, little_endian = _parse_bundle_header(table.pop(b""))
    if not little_endian:
        raise ValueError("it was written on a big-endian machine; use reader='tensorflow'")
    if not 1 <= num_shards <= 10_000:
        raise ValueError(f"it claims {num_shards} data shards")
    entries = {}
    for key, value in table.items():
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"it holds a tensor name that is not UTF-8 ({key[:40]!r})") from None
        entry = _parse_bundle_entry(value)
        if (entry.offset < 0 or entry.size < 0 or not 0 <= entry.shard_id < num_shards
                or any(dim < 0 for dim in entry.shape)):
            raise ValueError(f"its record of {name} is impossible (shard {entry.shard_id}, "
                             f"offset {entry.offset}, size {entry.size}, shape {entry.shape})")
        entries[name] = entry
    return num_shards, entries


def _verify_shard(path, entries, shard_id):
    """None if data shard `shard_id` holds exactly the tensors `entries` describe, with
    the right checksums; else what is wrong (for download_file's `verify`)."""
    mine = sorted((e.offset, e.size, e.crc32c, name) for name, e in entries.items()
                  if e.shard_id == shard_id)
    end = max((offset + size for offset, size, _, _ in mine), default=0)
    actual = path.stat().st_size
    if actual != end:
        return f"it has {actual:,} bytes, but the index describes {end:,}"
    with open(path, "rb") as f:
        for offset, size, crc, name in mine:
            f.seek(offset)
            if _masked_crc32c(f.read(size)) != crc:
                return (f"the bytes of {name} do not match the CRC32C checksum the index "
                        "stores (damaged in transfer, or on the server)")
    return None


class _NumpyCheckpoint:
    """TensorFlow's checkpoint format ("tensor bundle") read with NumPy alone.

    `model.ckpt.index` is a LevelDB-style table: sorted keys, each a tensor
    name whose value is a BundleEntryProto (dtype, shape, shard, byte offset,
    byte size, masked CRC32C of the bytes); the empty key holds the
    BundleHeaderProto. The raw tensor bytes lie in
    `model.ckpt.data-<shard>-of-<shards>` at those offsets. Every tensor read is
    checked against its CRC32C, as TensorFlow's own reader does.
    """

    def __init__(self, prefix):
        self._prefix = prefix
        index = prefix.with_name(prefix.name + ".index")
        try:
            self._num_shards, self._entries = _read_index(index)
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
        advice = "Delete it and download it again."
        try:
            with open(data_file, "rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except FileNotFoundError:
            raise CheckpointError(f"{data_file.name}, which holds {name}, is missing from "
                                  f"{data_file.parent}. Download the checkpoint again.") from None
        except OSError as error:
            raise CheckpointError(f"Cannot read {name} from {data_file}: "
                                  f"{error.strerror or error}. {advice}") from None
        if len(raw) != entry.size:
            raise _DamagedData(f"{data_file} ends before the data of {name}: it is "
                               "incomplete.", advice, data_file)
        if _masked_crc32c(raw) != entry.crc32c:
            raise _DamagedData(f"{data_file} is damaged: the bytes of {name} do not match "
                               "the CRC32C checksum in the index.", advice, data_file)
        # astype copies: arrays of their own, writable (frombuffer's view of bytes is not).
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(entry.shape)


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
    values = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "sliced": False,
              "crc32c": 0}  # proto3 leaves out zeros, a checksum of 0 included
    for field, value in _proto_fields(raw):
        if field == 1:
            values["dtype"] = value
        elif field == 2:
            values["shape"] = _parse_tensor_shape(value)
        elif field in (3, 4, 5):
            values[("shard_id", "offset", "size")[field - 3]] = _as_int64(value)
        elif field == 6:  # fixed32: the masked CRC32C of the tensor's bytes
            values["crc32c"] = value
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
