"""gpt_download's downloads against loopback HTTP servers that misbehave on purpose."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpt_download
from download_engine import download_file
from gpt_download import MIRROR_ENV, DownloadError, download_and_load_gpt2
from loopback_server import LoopbackServer
from tiny_models import TINY_HPARAMS as TINY

ROOT = Path(__file__).resolve().parent.parent

BODY = bytes(range(256)) * 1024  # 256 KiB, every byte position distinguishable by content


def leftovers(directory):
    """The files in `directory`, but the hidden lock files (.NAME.lock) that downloads keep."""
    if not Path(directory).exists():
        return []
    return sorted(p.name for p in Path(directory).iterdir() if not p.name.startswith("."))


# ---------------------------------------------------------------------------
# download_file
# ---------------------------------------------------------------------------

def test_dropped_connection_resumes_with_a_range_request(tmp_path):
    with LoopbackServer({"/f.bin": BODY}, drop_first={"/f.bin"}) as server:
        path = download_file(f"{server.url}/f.bin", tmp_path / "f.bin", backoff_s=0)
    assert path.read_bytes() == BODY
    # Only the missing half was asked for the second time.
    assert server.ranges_asked("/f.bin") == [None, f"bytes={len(BODY) // 2}-"]
    assert leftovers(tmp_path) == ["f.bin"]


def test_partial_file_survives_a_failed_call_and_the_next_call_resumes_it(tmp_path):
    with LoopbackServer({"/f.bin": BODY}, drop_first={"/f.bin"}) as server:
        with pytest.raises(DownloadError, match=r"f.bin: Connection broken: IncompleteRead\(131072 "
                                                r"bytes read, 131072 more expected\)\n.*calling "
                                                "again resumes"):
            download_file(f"{server.url}/f.bin", tmp_path / "f.bin", retries=0)
        assert leftovers(tmp_path) == ["f.bin.part"]
        assert (tmp_path / "f.bin.part").stat().st_size == len(BODY) // 2
        download_file(f"{server.url}/f.bin", tmp_path / "f.bin", retries=0)
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert server.ranges_asked("/f.bin") == [None, f"bytes={len(BODY) // 2}-"]
    assert leftovers(tmp_path) == ["f.bin"]


def test_server_that_ignores_range_is_downloaded_again_from_the_start(tmp_path):
    with LoopbackServer({"/f.bin": BODY}, drop_first={"/f.bin"},
                        ignore_range={"/f.bin"}) as server:
        path = download_file(f"{server.url}/f.bin", tmp_path / "f.bin", backoff_s=0)
    assert path.read_bytes() == BODY
    assert len(server.requests) == 2


def test_part_file_already_complete_is_just_renamed(tmp_path):
    (tmp_path / "f.bin.part").write_bytes(BODY)
    with LoopbackServer({"/f.bin": BODY}) as server:
        download_file(f"{server.url}/f.bin", tmp_path / "f.bin", expected_size=len(BODY))
    assert server.ranges_asked("/f.bin") == [f"bytes={len(BODY)}-"]  # answered 416
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert leftovers(tmp_path) == ["f.bin"]


def test_part_file_longer_than_the_file_is_discarded(tmp_path):
    (tmp_path / "f.bin.part").write_bytes(BODY + b"extra")
    with LoopbackServer({"/f.bin": BODY}) as server:
        # The server says 416 (the file has fewer bytes): the .part is dropped and the
        # file downloaded afresh in the same call.
        download_file(f"{server.url}/f.bin", tmp_path / "f.bin")
    assert server.ranges_asked("/f.bin") == [f"bytes={len(BODY) + 5}-", None]
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert leftovers(tmp_path) == ["f.bin"]


@pytest.mark.parametrize("code, primary_requests", [(404, 1), (500, 3)])
def test_backup_url_is_used_when_the_primary_fails(tmp_path, code, primary_requests):
    files = {"/backup/f.bin": BODY}
    with LoopbackServer(files, status={"/primary/f.bin": code}) as server:
        urls = [f"{server.url}/primary/f.bin", f"{server.url}/backup/f.bin"]
        download_file(urls, tmp_path / "f.bin", retries=2, backoff_s=0)
    assert (tmp_path / "f.bin").read_bytes() == BODY
    # 404 is final; 500 may be passing, so it is retried (here twice) first.
    assert len(server.ranges_asked("/primary/f.bin")) == primary_requests
    assert len(server.ranges_asked("/backup/f.bin")) == 1


def test_every_url_failing_is_reported_with_each_reason(tmp_path):
    with LoopbackServer({}, status={"/a": 403}) as server:
        with pytest.raises(DownloadError) as error:
            download_file([f"{server.url}/a", f"{server.url}/b"], tmp_path / "f.bin")
    message = str(error.value)
    assert f"{server.url}/a: HTTP 403" in message and f"{server.url}/b: HTTP 404" in message
    assert "Could not download f.bin" in message
    assert leftovers(tmp_path) == []


def test_html_page_where_a_binary_file_was_expected(tmp_path):
    page = b"\n<!DOCTYPE html><html><body>Please sign in</body></html>" * 20
    with LoopbackServer({"/f.bin": page}) as server:
        with pytest.raises(DownloadError, match="HTML or text page"):
            download_file(f"{server.url}/f.bin", tmp_path / "f.bin", binary=True)
    assert leftovers(tmp_path) == []  # neither f.bin nor f.bin.part


def test_body_of_the_wrong_size(tmp_path):
    with LoopbackServer({"/f.bin": BODY[:1000]}) as server:
        with pytest.raises(DownloadError, match="got 1,000 bytes, expected 262,144"):
            download_file(f"{server.url}/f.bin", tmp_path / "f.bin", expected_size=len(BODY))
    assert leftovers(tmp_path) == []


def test_complete_file_is_not_fetched_again(tmp_path):
    with LoopbackServer({"/f.bin": BODY}) as server:
        first = download_file(f"{server.url}/f.bin", tmp_path / "f.bin")
        second = download_file(f"{server.url}/f.bin", tmp_path / "f.bin", expected_size=len(BODY))
    assert first == second == tmp_path / "f.bin"
    assert len(server.requests) == 1


def test_existing_file_of_the_wrong_size_is_replaced(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"stale")
    with LoopbackServer({"/f.bin": BODY}) as server:
        download_file(f"{server.url}/f.bin", tmp_path / "f.bin", expected_size=len(BODY))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert server.ranges_asked("/f.bin") == [None]


def test_data_file_comes_from_the_mirror(tmp_path, monkeypatch):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("SMSSpamCollection", "ham\tHello\n")
    zip_bytes = buffer.getvalue()
    with LoopbackServer({"/sms_spam_collection/sms+spam+collection.zip": zip_bytes}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url + "/")
        path = gpt_download.download_data_file("sms_spam_collection/sms+spam+collection.zip",
                                               tmp_path)
    assert path == tmp_path / "sms+spam+collection.zip"
    assert path.read_bytes() == zip_bytes
    with pytest.raises(ValueError, match="the-verdict.txt"):
        gpt_download.download_data_file("verdict.txt", tmp_path)


def test_gpt2_urls_real_and_mirrored(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert gpt_download.gpt2_file_urls("355M", "model.ckpt.index") == [
        "https://openaipublic.blob.core.windows.net/gpt-2/models/355M/model.ckpt.index",
        "https://f001.backblazeb2.com/file/LLMs-from-scratch/gpt2/355M/model.ckpt.index",
    ]
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:8765/")
    assert gpt_download.gpt2_file_urls("124M", "hparams.json") == [
        "http://127.0.0.1:8765/gpt2/124M/hparams.json"]


# ---------------------------------------------------------------------------
# gpt_download is a leaf: its own size table, no chapters, no torch
# ---------------------------------------------------------------------------

def test_the_published_sizes_are_the_chapters_configurations():
    from previous_chapters import MODEL_CONFIGS, gpt2_config, gpt2_model_size

    published = gpt_download.published_gpt2_hparams()
    assert list(published) == [gpt2_model_size(name) for name in MODEL_CONFIGS]
    for name in MODEL_CONFIGS:
        config = gpt2_config(name)
        assert published[gpt2_model_size(name)] == {
            "n_vocab": config["vocab_size"], "n_ctx": config["context_length"],
            "n_embd": config["emb_dim"], "n_head": config["n_heads"],
            "n_layer": config["n_layers"]}, name


def test_importing_gpt_download_loads_neither_the_chapters_nor_torch():
    code = ("import sys, gpt_download\n"
            "assert gpt_download.published_gpt2_hparams()['124M']['n_layer'] == 12\n"
            "try:\n"
            "    gpt_download.download_and_load_gpt2('125M')\n"
            "except ValueError:\n"
            "    pass\n"
            "print(sorted({'previous_chapters', 'torch'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# download_and_load_gpt2 from a loopback mirror holding a tiny generated checkpoint
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_mirror(tmp_path_factory):
    """({url path: bytes} laid out like the course mirror, {tensor name: array written})."""
    from tools.make_gpt2_checkpoint import make_gpt2_checkpoint

    root = tmp_path_factory.mktemp("mirror")
    tokenizer = root / "tokenizer"
    tokenizer.mkdir()
    (tokenizer / "encoder.json").write_text('{"!": 0}')
    (tokenizer / "vocab.bpe").write_text("#version: 0.2\n")
    written = make_gpt2_checkpoint(root / "124M", TINY, seed=11, gpt2_dir=tokenizer)
    files = {f"/gpt2/124M/{p.name}": p.read_bytes() for p in (root / "124M").iterdir()}
    return files, written


@pytest.mark.slow  # writes a TensorFlow checkpoint
@pytest.mark.parametrize("reader", ["tensorflow", "numpy"])
def test_download_and_load_gpt2_end_to_end(tiny_mirror, tmp_path, monkeypatch, reader):
    files, written = tiny_mirror
    with LoopbackServer(dict(files)) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        settings, params = download_and_load_gpt2("124M", tmp_path / "models", reader=reader)
        fetched = [path for path, _ in server.requests]
        # Offline rerun: everything is on disk, so nothing is requested.
        settings_again, params_again = download_and_load_gpt2("124m", tmp_path / "models",
                                                               reader=reader)
        assert len(server.requests) == 7

    assert settings == settings_again == TINY
    assert fetched[0] == "/gpt2/124M/hparams.json"
    assert sorted(fetched) == sorted(files)
    model_dir = tmp_path / "models" / "124M"
    assert leftovers(model_dir) == sorted(gpt_download.GPT2_FILES)
    for name in gpt_download.GPT2_FILES:
        assert (model_dir / name).read_bytes() == files[f"/gpt2/124M/{name}"], name
    assert np.array_equal(params["wte"], written["model/wte"])
    assert np.array_equal(params["blocks"][1]["mlp"]["c_fc"]["w"], written["model/h1/mlp/c_fc/w"][0])
    assert np.array_equal(params["b"], written["model/ln_f/b"])
    assert np.array_equal(params_again["blocks"][0]["attn"]["c_attn"]["b"],
                          written["model/h0/attn/c_attn/b"])


def test_unknown_model_size(tmp_path, monkeypatch):
    with LoopbackServer({}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(ValueError, match="'125M'; choose one of: 124M, 355M, 774M, 1558M"):
            download_and_load_gpt2("125M", tmp_path / "models")
    assert server.requests == []
    assert leftovers(tmp_path) == []


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_short_weights_file_on_the_mirror(tiny_mirror, tmp_path, monkeypatch):
    files, _ = tiny_mirror
    weights = "/gpt2/124M/model.ckpt.data-00000-of-00001"
    with LoopbackServer(dict(files, **{weights: files[weights][:5000]})) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        # The expected size comes from hparams.json: 2,400 float32 numbers.
        with pytest.raises(DownloadError, match="got 5,000 bytes, expected 9,600"):
            download_and_load_gpt2("124M", tmp_path / "models", reader="numpy")
    left = leftovers(tmp_path / "models" / "124M")
    assert not any(name.startswith("model.ckpt.data") for name in left), left


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_html_page_instead_of_a_checkpoint_file(tiny_mirror, tmp_path, monkeypatch):
    files, _ = tiny_mirror
    index = "/gpt2/124M/model.ckpt.index"
    with LoopbackServer(dict(files, **{index: b"<html><body>Blob not found</body></html>"})) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(DownloadError, match="model.ckpt.index.*HTML or text page"):
            download_and_load_gpt2("124M", tmp_path / "models", reader="numpy")
    left = leftovers(tmp_path / "models" / "124M")
    assert not any(name.startswith("model.ckpt.index") for name in left), left


@pytest.mark.slow  # writes a TensorFlow checkpoint
def test_missing_file_on_the_mirror(tiny_mirror, tmp_path, monkeypatch):
    files, _ = tiny_mirror
    served = {path: body for path, body in files.items() if not path.endswith(".meta")}
    with LoopbackServer(served) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(DownloadError, match=r"(?s)model.ckpt.meta: HTTP 404.*"
                                                 f"{MIRROR_ENV} is set"):
            download_and_load_gpt2("124M", tmp_path / "models", reader="numpy")


def test_hparams_without_the_needed_keys(tmp_path, monkeypatch):
    with LoopbackServer({"/gpt2/124M/hparams.json": b'{"n_vocab": 64}'}) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        # The file is checked (and deleted) before anything else is fetched.
        with pytest.raises(DownloadError, match="n_ctx, n_embd, n_head, n_layer"):
            download_and_load_gpt2("124M", tmp_path / "models")
    assert leftovers(tmp_path / "models" / "124M") == []
    assert len(server.requests) == 1  # nothing else fetched on the strength of bad hparams
