"""Downloading the course's data and OpenAI's GPT-2 checkpoints.

This is the course's one hand-written library file: everything in
`previous_chapters.py` is exported from the notebooks, but downloading is
plumbing rather than a lesson, so it lives here.

Downloads go to the real URLs. Set the environment variable
`LLM_COURSE_MIRROR` to a base URL (e.g. `http://127.0.0.1:8765`) to fetch
every file from a mirror instead; the mirror holds each file under the path
given as its `mirror_path` (for example `the-verdict.txt`).
"""

import os
import time
import urllib.error
import urllib.request
from http.client import IncompleteRead
from pathlib import Path

from tqdm.auto import tqdm

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

CHUNK_BYTES = 1 << 20
RETRYABLE_HTTP_CODES = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """A download failed in a way that retrying the same URL will not fix."""


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
    with the wrong thing; such a body is deleted and reported.
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
            _check_body(partial, url, expected_size, binary)
        except DownloadError as error:
            partial.unlink(missing_ok=True)
            failures.append(f"{url}: {error}")
            continue
        except (urllib.error.URLError, OSError, IncompleteRead) as error:
            # Keep the partial file: the next call resumes it.
            failures.append(f"{url}: {error}")
            continue
        partial.replace(destination)
        return destination
    raise DownloadError(
        f"Could not download {destination.name}.\n  " + "\n  ".join(failures)
        + f"\nCheck your connection, or set {MIRROR_ENV} to a mirror that has the file."
    )


def _download_with_retries(url, partial, retries, backoff_s, timeout_s):
    for attempt in range(retries + 1):
        try:
            _resume_download(url, partial, timeout_s)
            return
        except urllib.error.HTTPError as error:
            if error.code not in RETRYABLE_HTTP_CODES or attempt == retries:
                raise DownloadError(f"HTTP {error.code} {error.reason}") from error
        except (urllib.error.URLError, OSError, IncompleteRead):
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
        if error.code == 416 and have:  # nothing left to fetch
            return
        raise
    with response:
        if have and response.status != 206:  # the server ignored Range: start over
            have = 0
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
            raise IncompleteRead(b"", total - partial.stat().st_size)


def _check_body(path, url, expected_size, binary):
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"got {size:,} bytes, expected {expected_size:,}")
    if binary:
        with open(path, "rb") as f:
            head = f.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise DownloadError("got an HTML page where a data file was expected "
                                "(a login page, error page or wrong URL?)")
