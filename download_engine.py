"""Verified downloads: nothing downloaded is trusted unchecked, and every wait is bounded.

The support layer under gpt_download.py (which says *what* the course downloads);
this module knows only *how*. It imports nothing from the chapters.

    download_file(urls, destination, expected_size=..., sha256=..., ...)
        Fetch the first URL that works, check the bytes, rename them into place.
    extract_zip_member(zip_path, member, destination, expected_size=..., sha256=...)
        Write one member of a zip, capped and checked, all or nothing.
    source_urls(urls, mirror_path)
        The URLs to try: the mirror alone when LLM_COURSE_MIRROR is set.

What every download gets: a size and SHA-256 check when they are known (a cap when
only a maximum is), a check that the body is not an HTML or error page, the caller's
own `verify`; a `.part` file that one process at a time writes (a lock beside it) and
that a later call resumes with an HTTP Range request; a rename into place only once
every check passed; a per-read timeout and an overall deadline; errors that say in
one line per URL what went wrong, and what to do.
"""

import hashlib
import os
import re
import sys
import time
import zipfile
import zlib
from pathlib import Path

import requests
import urllib3
from filelock import FileLock, Timeout
from tqdm import tqdm  # plain text bars: tqdm.auto needs ipywidgets in notebooks

MIRROR_ENV = "LLM_COURSE_MIRROR"
HF_TOKEN_ENV = "HF_TOKEN"  # an access token for the hub's gated models (Meta's Llama)
# Bounded waits, in seconds (environment variables override the defaults):
TIMEOUT_ENV = "LLM_COURSE_DOWNLOAD_TIMEOUT_S"    # silence allowed per read (default 15)
DEADLINE_ENV = "LLM_COURSE_DOWNLOAD_DEADLINE_S"  # a whole file (default: from its size)
DEFAULT_TIMEOUT_S = 15.0
MIN_RATE_BYTES_S = 100_000  # the default deadline allows this slow a connection...
DEADLINE_BASE_S = 60.0      # ...plus this much time
UNKNOWN_SIZE_DEADLINE_S = 600.0

CHUNK_BYTES = 1 << 20
RETRYABLE_HTTP_CODES = {408, 425, 429, 500, 502, 503, 504}
# Accept-Encoding "identity": the bytes as the server stores them, so that a Range
# request resumes them and their size and SHA-256 are the published ones.
REQUEST_HEADERS = {"User-Agent": "llm-course", "Accept-Encoding": "identity"}
# What a timeout looks like: before the headers (requests) or while reading the body (urllib3).
_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
# A connection refused, reset or cut short: worth another try.
_TRANSIENT = (OSError, urllib3.exceptions.HTTPError)  # requests' errors are OSErrors


class DownloadError(RuntimeError):
    """A download failed; the message says which URLs were tried and what to do."""


class _BadBody(DownloadError):
    """The server sent the wrong thing; resuming it would only extend the damage."""


class _Stalled(DownloadError):
    """The server went silent, or the overall deadline passed: try no more."""


class _HTTPStatus(DownloadError):
    """The server answered with an HTTP error status."""

    def __init__(self, response):
        super().__init__(f"HTTP {response.status_code} {response.reason}")
        self.code = response.status_code


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
        deadline_s = _env_seconds(DEADLINE_ENV, None) or deadline_for(expected_size or max_size)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    limit = expected_size if expected_size is not None else max_size

    with file_lock(destination, deadline_s):
        deadline = time.monotonic() + deadline_s  # from now: waiting for the lock is not counted
        if destination.exists():
            if file_problem(destination, expected_size, sha256,
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
                    problem = file_problem(partial, expected_size, sha256, verify, binary)
                    if problem is not None:
                        raise _BadBody(problem)
                except _BadBody as error:
                    partial.unlink(missing_ok=True)
                    if resumed and not fresh_start:
                        continue  # maybe only the old bytes were bad: once more from byte 0
                    failures.append(f"{url}: {error}")
                except (DownloadError, *_TRANSIENT) as error:
                    # An HTTP error status or a network failure says nothing against the
                    # bytes already in the partial file: keep them for the next URL or call.
                    failures.append(f"{url}: {_describe(error)}")
                else:
                    partial.replace(destination)
                    return destination
                break
    raise DownloadError(f"Could not download {destination.name}.\n  "
                        + "\n  ".join(failures) + "\n" + _download_advice(partial))


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


def source_urls(urls, mirror_path):
    """The URLs to try, in order: the mirror alone when one is set, else the real ones."""
    mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    if mirror:
        return [f"{mirror}/{mirror_path}"]
    return list(urls)


def mirror_advice():
    """One sentence on where the files come from, for the end of an error message."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return (f"{MIRROR_ENV} is set to {mirror}: check that the mirror is running "
                "and holds this file, or unset it to use the real URLs.")
    return f"Check your internet connection, or set {MIRROR_ENV} to a mirror that has the file."


def deadline_for(size):
    """The default time allowed for a file of `size` bytes (None: not known)."""
    if size is None:
        return UNKNOWN_SIZE_DEADLINE_S
    return DEADLINE_BASE_S + size / MIN_RATE_BYTES_S


def file_lock(destination, wait_s):
    """A lock held while `destination` is checked, downloaded or extracted."""
    lock_path = destination.with_name(f".{destination.name}.lock")
    return _WaitingLock(lock_path, destination, wait_s)


def file_problem(path, expected_size, sha256, verify, binary=False):
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


# ---------------------------------------------------------------------------
# Fetching, retrying and resuming
# ---------------------------------------------------------------------------

def _download_with_retries(url, partial, retries, backoff_s, timeout_s, deadline, limit):
    """Fetch `url` into `partial`, retrying transient failures with exponential back-off.

    Hand-written rather than urllib3's Retry: a retry after a dropped body must ask
    for the bytes still missing (a new Range), a silent server must not be waited for
    again, and no back-off may sleep past the deadline.
    """
    for attempt in range(retries + 1):
        before = _size(partial)
        try:
            _resume_download(url, partial, timeout_s, deadline, limit)
            return
        except _HTTPStatus as error:
            if error.code not in RETRYABLE_HTTP_CODES or attempt == retries:
                raise
        except _TRANSIENT as error:
            if isinstance(error, _TIMEOUTS) and _size(partial) == before:
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
    have = _size(partial)
    if limit is not None and have > limit:
        raise _BadBody(f"{partial.name} holds {have:,} bytes, more than the {limit:,} expected")
    headers = dict(REQUEST_HEADERS, **_hub_token_header(url),
                   **({"Range": f"bytes={have}-"} if have else {}))
    remaining_s = deadline - time.monotonic()
    if remaining_s <= 0:
        raise _Stalled("the deadline for this file passed; gave up")
    with requests.get(url, headers=headers, stream=True,
                      timeout=min(timeout_s, remaining_s)) as response:
        if response.status_code == 416 and have:
            # "Range not satisfiable": fine if the partial file already holds every byte.
            total = _content_range(response.headers)[1]
            if total is None or total == have:
                return
            raise _BadBody(f"{partial.name} holds {have:,} bytes but the file has {total:,}")
        if response.status_code >= 400:
            raise _HTTPStatus(response)
        if have and response.status_code != 206:  # the server ignored Range: start over
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
        # A body shorter than its Content-Length raises urllib3's IncompleteRead: retried.
        _append_body(response.raw, partial, have, total, deadline, limit)


def _append_body(body, partial, have, total, deadline, limit):
    """Write the response `body` to `partial` after its first `have` bytes."""
    with open(partial, "ab" if have else "wb") as out, tqdm(
        total=total, initial=have, unit="B", unit_scale=True,
        desc=partial.name.removesuffix(".part"), leave=False,
    ) as progress:
        size = have
        while True:
            if time.monotonic() > deadline:
                raise _Stalled(f"the deadline for this file passed after {size:,} bytes; "
                               f"gave up (set {DEADLINE_ENV} to allow longer)")
            # read1: whatever has arrived (up to a chunk), so a trickle can't hold this
            # loop past the deadline; decode_content=False: the bytes as sent.
            chunk = body.read1(CHUNK_BYTES, decode_content=False)
            if not chunk:
                return
            if limit is not None and size + len(chunk) > limit:
                raise _BadBody(f"the server sent more than the {limit:,} bytes expected")
            out.write(chunk)
            size += len(chunk)
            progress.update(len(chunk))


def _hub_token_header(url):
    """The Hugging Face access token in $HF_TOKEN, sent to the hub alone (its gated models)."""
    token = os.environ.get(HF_TOKEN_ENV, "").strip()
    if token and url.startswith("https://huggingface.co/"):
        return {"Authorization": f"Bearer {token}"}
    return {}


def _content_range(headers):
    """(first byte, total size) from a Content-Range header; None where not stated."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)",
                         (headers.get("Content-Range") or "").strip())
    if not match:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total != "*" else None)


def _size(path):
    return path.stat().st_size if path.exists() else 0


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


# ---------------------------------------------------------------------------
# Messages and checks
# ---------------------------------------------------------------------------

def _describe(error):
    if isinstance(error, _TIMEOUTS):
        return "no answer (timed out)"
    if isinstance(error, requests.ConnectionError):
        root = _innermost(error)  # requests wraps urllib3's error, which wraps the OS's
        return f"cannot connect ({getattr(root, 'strerror', None) or root})"
    if isinstance(error, urllib3.exceptions.ProtocolError) and error.args:
        return str(error.args[0])  # its message, without the tuple of arguments
    return str(error) or type(error).__name__


def _innermost(error):
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    return error


def _download_advice(partial):
    advice = mirror_advice()
    if partial.exists():
        advice += (f" {partial} keeps the {partial.stat().st_size:,} bytes received "
                   "so far; calling again resumes from there.")
    return advice


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
