"""Nothing downloaded is trusted unchecked (issue 13): hostile loopback servers, damaged
files, interrupted extraction, two processes fetching one file, bounded waits."""

import hashlib
import io
import json
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

import download_engine
import gpt_download
import tf_checkpoint
from download_engine import TIMEOUT_ENV, download_file, extract_zip_member
from gpt_download import (
    DATA_FILES, MIRROR_ENV, CheckpointError, DownloadError, download_and_load_gpt2,
    download_data_file, load_gpt2_params_from_tf_ckpt,
)

ROOT = Path(__file__).resolve().parent.parent
# A server whose routes may be functions that answer however they like (hostile ones).
from loopback_server import LoopbackServer as Hostile
from tiny_models import TINY_HPARAMS as TINY

BODY = bytes(range(256)) * 1024  # 256 KiB
BODY_SHA = hashlib.sha256(BODY).hexdigest()
DATA_SHARD = "model.ckpt.data-00000-of-00001"


def files_in(directory):
    directory = Path(directory)
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) \
        if directory.exists() else []


def raw_body(data):
    """A route sending `data` with no Content-Length, then closing: a cut-off body looks so."""
    def route(handler):
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(data)
    return route


# ---------------------------------------------------------------------------
# 1, 3. The course's data files are checked by size and SHA-256
# ---------------------------------------------------------------------------

@pytest.mark.needs_data
@pytest.mark.parametrize("name", [name for name, spec in DATA_FILES.items() if spec.sha256])
def test_the_recorded_sizes_and_hashes_are_those_of_the_served_files(name, tmp_path):
    path = download_data_file(name, tmp_path)
    data = path.read_bytes()
    assert len(data) == DATA_FILES[name].size
    assert hashlib.sha256(data).hexdigest() == DATA_FILES[name].sha256


@pytest.mark.parametrize("body", [
    b"\xef\xbb\xbf<head><title>502</title></head>",   # HTML without <!doctype or <html
    b"Not Found",                                     # a plain-text error
    None,                                             # the real text cut short, no Content-Length
])
def test_a_wrong_data_file_is_never_kept(tmp_path, monkeypatch, body):
    real = (ROOT.parent / "shared" / "data" / "the-verdict.txt")
    text = real.read_bytes() if real.exists() else b"x" * 20_479
    route = raw_body(text[:5000]) if body is None else body
    with Hostile({"/the-verdict.txt": route}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(DownloadError, match=r"the-verdict.txt(?s:.*)expected 20,479"):
            download_data_file("the-verdict.txt", tmp_path)
    assert files_in(tmp_path) == []  # neither the file nor a .part to resume


def test_a_right_sized_data_file_with_wrong_bytes_is_refused_by_hash(tmp_path, monkeypatch):
    with Hostile({"/the-verdict.txt": b"A" * 20_479}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(DownloadError, match="SHA-256"):
            download_data_file("the-verdict.txt", tmp_path)
    assert files_in(tmp_path) == []


def test_a_damaged_data_file_already_on_disk_is_fetched_again(tmp_path, monkeypatch):
    (tmp_path / "f.txt").write_bytes(b"<html>error</html>")
    with Hostile({"/f.txt": BODY}) as server:
        path = download_file(f"{server.url}/f.txt", tmp_path / "f.txt", sha256=BODY_SHA)
    assert path.read_bytes() == BODY


# ---------------------------------------------------------------------------
# 2. One writer per file; a resumed .part is checked like any other file
# ---------------------------------------------------------------------------

def slow_body(data, pieces=25, pause_s=0.02):
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        step = len(data) // pieces + 1
        for start in range(0, len(data), step):
            handler.wfile.write(data[start:start + step])
            handler.wfile.flush()
            time.sleep(pause_s)
    return route


def test_two_processes_downloading_one_file_never_share_a_part(tmp_path):
    code = ("import sys; from download_engine import download_file;"
            "download_file(sys.argv[1], sys.argv[2], expected_size=int(sys.argv[3]),"
            " sha256=sys.argv[4]); print('ok')")
    with Hostile({"/f.bin": slow_body(BODY)}) as server:
        args = [sys.executable, "-c", code, f"{server.url}/f.bin",
                str(tmp_path / "f.bin"), str(len(BODY)), BODY_SHA]
        runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        results = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert files_in(tmp_path) == ["f.bin"]
    assert len(server.requests) == 1  # the second process waited, then used the first's file


def test_a_part_file_holding_garbage_is_caught_and_downloaded_afresh(tmp_path):
    (tmp_path / "f.bin.part").write_bytes(b"\x00" * (len(BODY) // 2))  # not BODY's first half
    with Hostile({"/f.bin": BODY}) as server:
        download_file(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=BODY_SHA, backoff_s=0)
    assert (tmp_path / "f.bin").read_bytes() == BODY
    # First the resume (whose result fails the hash), then the whole file.
    assert [r for _, r in server.requests] == [f"bytes={len(BODY) // 2}-", None]


# ---------------------------------------------------------------------------
# 3. Extraction: atomic, only the expected member, capped
# ---------------------------------------------------------------------------

SMS = b"ham\tGo until jurong point\nspam\tWINNER!! Claim your prize\n" * 100


def zip_of(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def sms_spec(monkeypatch):
    """DATA_FILES' SMSSpamCollection entry, pinned to the small SMS stand-in."""
    key = "sms_spam_collection/SMSSpamCollection"
    spec = DATA_FILES[key]._replace(size=len(SMS), sha256=hashlib.sha256(SMS).hexdigest())
    monkeypatch.setitem(DATA_FILES, key, spec)
    return key


def serve_zip(monkeypatch, data):
    server = Hostile({"/sms_spam_collection/sms+spam+collection.zip": data})
    monkeypatch.setenv(MIRROR_ENV, server.url)
    return server


def test_sms_data_is_extracted_verified(tmp_path, monkeypatch, sms_spec):
    with serve_zip(monkeypatch, zip_of({"SMSSpamCollection": SMS, "readme": b"hi"})):
        path = download_data_file(sms_spec, tmp_path)
    assert path == tmp_path / "SMSSpamCollection" and path.read_bytes() == SMS
    assert files_in(tmp_path) == ["SMSSpamCollection", "sms+spam+collection.zip"]


def test_a_partial_extraction_on_disk_is_not_trusted(tmp_path, monkeypatch, sms_spec):
    (tmp_path / "SMSSpamCollection").write_bytes(SMS[:1000])  # an interrupted extraction
    with serve_zip(monkeypatch, zip_of({"SMSSpamCollection": SMS})):
        path = download_data_file(sms_spec, tmp_path)
    assert path.read_bytes() == SMS


def test_an_interrupted_extraction_leaves_nothing(tmp_path, monkeypatch):
    zip_path = tmp_path / "a.zip"
    zip_path.write_bytes(zip_of({"SMSSpamCollection": SMS}))

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(download_engine.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        extract_zip_member(zip_path, "SMSSpamCollection", tmp_path / "SMSSpamCollection",
                           expected_size=len(SMS))
    assert files_in(tmp_path) == ["a.zip"]  # no SMSSpamCollection for the next run to trust


def test_a_zip_bomb_is_stopped_at_the_expected_size(tmp_path, monkeypatch, sms_spec):
    bomb = zip_of({"SMSSpamCollection": b"\0" * 20_000_000})  # ~20 KB compressed
    with serve_zip(monkeypatch, bomb):
        with pytest.raises(DownloadError, match=f"more than the {len(SMS):,} expected"):
            download_data_file(sms_spec, tmp_path)
    assert files_in(tmp_path) == []  # the zip is deleted too: it can't be the right one


def test_a_zip_without_the_member_or_with_a_path_in_its_name(tmp_path, monkeypatch, sms_spec):
    with serve_zip(monkeypatch, zip_of({"../SMSSpamCollection": SMS})):
        with pytest.raises(DownloadError, match=r"holds no SMSSpamCollection \(it holds: "
                                                r"\.\./SMSSpamCollection\)"):
            download_data_file(sms_spec, tmp_path)
    assert files_in(tmp_path) == []
    zip_path = tmp_path / "a.zip"
    zip_path.write_bytes(zip_of({"SMSSpamCollection": SMS}))
    with pytest.raises(ValueError, match="plain file name"):
        extract_zip_member(zip_path, "../SMSSpamCollection", tmp_path / "x")


def test_a_member_with_the_wrong_bytes_condemns_the_zip(tmp_path, monkeypatch, sms_spec):
    with serve_zip(monkeypatch, zip_of({"SMSSpamCollection": SMS[::-1]})):
        with pytest.raises(DownloadError, match="SHA-256(?s:.*)was deleted"):
            download_data_file(sms_spec, tmp_path)
    assert files_in(tmp_path) == []


# ---------------------------------------------------------------------------
# 4. Bounded waits
# ---------------------------------------------------------------------------

def silent_route(release):
    """A route that answers nothing at all until `release` is set (at most a minute)."""
    return lambda handler: release.wait(60)


@pytest.mark.parametrize("setting", ["argument", "environment"])
def test_a_silent_server_is_given_up_on_after_one_timeout(tmp_path, monkeypatch, setting):
    if setting == "environment":  # what every download uses when no argument says otherwise
        monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    timeout_s = {"argument": 0.4, "environment": None}[setting]
    release = threading.Event()
    with Hostile({"/f.bin": silent_route(release)}) as server:
        try:
            with pytest.raises(DownloadError, match=f"no data for {timeout_s or 0.3} s"):
                download_file(f"{server.url}/f.bin", tmp_path / "f.bin", timeout_s=timeout_s,
                              backoff_s=0)
        finally:
            release.set()
    assert len(server.requests) == 1  # not asked again: one timeout, not one per retry


class SteppingClock:
    """Stands in for download_engine's `time`: every reading of the clock is `step_s` later
    and lets the trickling server send one more byte. So the bytes sent before the deadline
    depend on how often the client looks at the clock, not on how busy the machine is."""

    def __init__(self, step_s=1.0):
        self.now, self.step_s = 0.0, step_s
        self.ticks = threading.Semaphore(0)
        self.bytes_sent = 0

    def monotonic(self):
        self.now += self.step_s
        self.ticks.release()
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def trickle(self, handler):
        """A route sending BODY one byte per reading of the clock."""
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(BODY)))
        handler.end_headers()
        for byte in BODY:
            # A client that stops reading the clock gets a body cut short.
            if not self.ticks.acquire(timeout=5):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            self.bytes_sent += 1


def test_a_trickling_server_meets_the_overall_deadline(tmp_path, monkeypatch):
    clock = SteppingClock()
    monkeypatch.setattr(download_engine, "time", clock)
    with Hostile({"/f.bin": clock.trickle}) as server:
        with pytest.raises(DownloadError, match="deadline for this file passed after"):
            download_file(f"{server.url}/f.bin", tmp_path / "f.bin", timeout_s=60,
                          deadline_s=20)
        sent = clock.bytes_sent
        clock.ticks.release(len(BODY))  # let the route run out, its client gone
    # About one byte per (simulated) second of the deadline: the rest never came.
    assert sent < 100 < len(BODY)


def test_writing_stops_past_the_expected_size(tmp_path):
    def endless(handler):
        handler.send_response(200)
        handler.end_headers()
        for _ in range(2000):  # 128 MB if nobody stops reading
            handler.wfile.write(b"x" * 65536)

    with Hostile({"/f.bin": endless}) as server:
        with pytest.raises(DownloadError, match="more than the 20,479 bytes expected"):
            download_file(f"{server.url}/f.bin", tmp_path / "f.bin", expected_size=20_479)
    assert files_in(tmp_path) == []


def test_a_content_length_over_the_cap_is_refused_before_writing(tmp_path):
    with Hostile({"/f.bin": BODY}) as server:
        with pytest.raises(DownloadError, match="offers 262,144 bytes"):
            download_file(f"{server.url}/f.bin", tmp_path / "f.bin", max_size=1000)
    assert files_in(tmp_path) == []


# ---------------------------------------------------------------------------
# GPT-2: per-tensor CRC32C, hparams against the index
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    from tools.make_gpt2_checkpoint import make_gpt2_checkpoint

    root = tmp_path_factory.mktemp("tiny")
    tokenizer = root / "tokenizer"
    tokenizer.mkdir()
    (tokenizer / "encoder.json").write_text('{"!": 0}')
    (tokenizer / "vocab.bpe").write_text("#version: 0.2\n")
    make_gpt2_checkpoint(root / "124M", TINY, seed=5, gpt2_dir=tokenizer)
    return {p.name: p.read_bytes() for p in (root / "124M").iterdir()}


def flipped(data, position):
    data = bytearray(data)
    data[position] ^= 0x01
    return bytes(data)


def write_checkpoint(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_a_flipped_byte_in_a_right_sized_shard_is_refused_by_both_readers(tiny_files, tmp_path):
    files = dict(tiny_files)
    files[DATA_SHARD] = flipped(files[DATA_SHARD], 4321)
    folder = write_checkpoint(tmp_path / "124M", files)
    for reader in ("numpy", "tensorflow"):  # TensorFlow's always did; now the NumPy one too
        with pytest.raises(CheckpointError, match="(?i)checksum|crc"):
            load_gpt2_params_from_tf_ckpt(folder, TINY, reader=reader)


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_a_flipped_byte_from_the_mirror_is_never_kept(tiny_files, tmp_path, monkeypatch):
    files = dict(tiny_files)
    files[DATA_SHARD] = flipped(files[DATA_SHARD], 4321)
    with Hostile({f"/gpt2/124M/{name}": data for name, data in files.items()}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(DownloadError, match="CRC32C"):
            download_and_load_gpt2("124M", tmp_path)
    assert DATA_SHARD not in files_in(tmp_path / "124M")
    assert DATA_SHARD + ".part" not in files_in(tmp_path / "124M")


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_a_shard_damaged_on_disk_is_deleted_when_loading(tiny_files, tmp_path, monkeypatch):
    files = dict(tiny_files)
    files[DATA_SHARD] = flipped(files[DATA_SHARD], 100)
    write_checkpoint(tmp_path / "124M", files)
    with Hostile({}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(CheckpointError, match="CRC32C checksum in the index. It was deleted; "
                                                  "run again"):
            download_and_load_gpt2("124M", tmp_path)
    assert DATA_SHARD not in files_in(tmp_path / "124M")


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_a_wrong_hparams_on_disk_does_not_condemn_the_weights(tiny_files, tmp_path, monkeypatch):
    files = dict(tiny_files, **{"hparams.json": json.dumps(dict(TINY, n_layer=3)).encode()})
    write_checkpoint(tmp_path / "124M", files)
    with Hostile({f"/gpt2/124M/{name}": data for name, data in tiny_files.items()}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        settings, params = download_and_load_gpt2("124M", tmp_path)
    assert settings == TINY and len(params["blocks"]) == 2
    # Only the two small description files were fetched again, not the weights.
    assert sorted(path for path, _ in server.requests) == [
        "/gpt2/124M/hparams.json", "/gpt2/124M/model.ckpt.index"]


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_a_mirror_whose_hparams_and_index_disagree(tiny_files, tmp_path, monkeypatch):
    files = dict(tiny_files, **{"hparams.json": json.dumps(dict(TINY, n_embd=16)).encode()})
    with Hostile({f"/gpt2/124M/{name}": data for name, data in files.items()}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(CheckpointError, match="describe different models"):
            download_and_load_gpt2("124M", tmp_path)
        assert not any(DATA_SHARD in path for path, _ in server.requests)


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_published_sizes_need_openais_tokenizer_files(monkeypatch, tiny_files, tmp_path):
    # Pretend the tiny model is the published 124M: then its stand-in encoder.json is refused.
    monkeypatch.setattr(gpt_download, "published_gpt2_hparams", lambda: {"124M": dict(TINY)})
    with Hostile({f"/gpt2/124M/{name}": data for name, data in tiny_files.items()}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(DownloadError, match="encoder.json(?s:.*)expected 1,042,301"):
            download_and_load_gpt2("124M", tmp_path)


# ---------------------------------------------------------------------------
# 9. Crafted index records give CheckpointError, not OSError
# ---------------------------------------------------------------------------

@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_crafted_offsets_and_missing_shards_are_checkpoint_errors(tiny_files, tmp_path,
                                                                  monkeypatch):
    folder = write_checkpoint(tmp_path / "124M", tiny_files)
    entries = tf_checkpoint.read_index(folder / "model.ckpt.index")[1]
    name = "model/wte"
    real_parse = tf_checkpoint._parse_bundle_entry

    def crafted(**changes):
        def parse(raw):
            entry = real_parse(raw)
            return entry._replace(**changes) if entry == entries[name] else entry
        monkeypatch.setattr(tf_checkpoint, "_parse_bundle_entry", parse)

    crafted(offset=-8)
    with pytest.raises(CheckpointError, match="impossible"):
        load_gpt2_params_from_tf_ckpt(folder, TINY)
    crafted(shard_id=3)
    with pytest.raises(CheckpointError, match="impossible"):
        load_gpt2_params_from_tf_ckpt(folder, TINY)
    crafted(offset=10**12)
    with pytest.raises(CheckpointError, match="incomplete"):
        load_gpt2_params_from_tf_ckpt(folder, TINY)
    monkeypatch.setattr(tf_checkpoint, "_parse_bundle_entry", real_parse)
    (folder / DATA_SHARD).rename(folder / "model.ckpt.data-00000-of-00002")
    (folder / "model.ckpt.data-00001-of-00002").write_bytes(b"")
    with pytest.raises(CheckpointError):
        load_gpt2_params_from_tf_ckpt(folder, TINY)
