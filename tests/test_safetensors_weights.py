"""GPT-2 from the Hugging Face hub (model.safetensors + config.json) gives the same arrays as
OpenAI's TensorFlow files, and a damaged download is refused (issue 14)."""

import hashlib
import json

import numpy as np
import pytest
import torch

from gpt_download import (
    MIRROR_ENV, MIRROR_MANIFEST_ENV, DownloadError, download_and_load_gpt2, hub_mirror_path,
)
from loopback_server import LoopbackServer
from tools.make_gpt2_checkpoint import (
    TINY_HPARAMS, hub_tensor_name, make_gpt2_checkpoint, openai_tensor_specs,
    save_with_tensorflow_saver, write_hub_files,
)


pytestmark = pytest.mark.slow  # TensorFlow writes the OpenAI-format copies compared here

# Small but with GPT-2's real vocabulary and context length.
SMALL = {**TINY_HPARAMS, "n_vocab": 50257, "n_ctx": 1024}
HUB = "/" + hub_mirror_path("gpt2", "")  # the 124M model's folder on the mirror


def stand_in_tokenizer(folder):
    """encoder.json and vocab.bpe stand-ins (a model that is not OpenAI's may have any)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "encoder.json").write_text('{"!": 0}')
    (folder / "vocab.bpe").write_text("#version: 0.2\n")
    return folder


def identity(data):
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """(Hugging Face model, {url path: bytes} of a mirror holding it both ways).

    The weights are random, saved by transformers' own save_pretrained; the same arrays
    are written in OpenAI's TensorFlow format under gpt2/124M/.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=SMALL["n_vocab"], n_positions=SMALL["n_ctx"],
                        n_embd=SMALL["n_embd"], n_head=SMALL["n_head"], n_layer=SMALL["n_layer"])
    hf_model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # make every bias and gain different from its initial 0 or 1
        for name, param in hf_model.named_parameters():
            if param.dim() == 1:
                param.add_(0.1 * torch.randn_like(param))
    root = tmp_path_factory.mktemp("mirror")
    hf_model.save_pretrained(root / "hub", safe_serialization=True)
    files = {HUB + name: (root / "hub" / name).read_bytes()
             for name in ("config.json", "model.safetensors")}

    state = hf_model.state_dict()
    tensors = {}
    for name, shape, _ in openai_tensor_specs(SMALL):
        value = state["transformer." + hub_tensor_name(name)].numpy()
        tensors[name] = value.reshape(shape)  # OpenAI's 1x1-convolution axis, where it has one
    checkpoint = root / "openai"
    checkpoint.mkdir()
    save_with_tensorflow_saver(tensors, checkpoint / "model.ckpt")
    (checkpoint / "hparams.json").write_text(json.dumps(SMALL))
    for path in stand_in_tokenizer(root / "tokenizer").iterdir():
        (checkpoint / path.name).write_bytes(path.read_bytes())
    files.update({f"/gpt2/124M/{path.name}": path.read_bytes() for path in checkpoint.iterdir()})
    return hf_model, files


def manifest_for(tmp_path, files, names=("config.json", "model.safetensors")):
    """A mirror manifest giving the size and SHA-256 of these hub files, as served."""
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({(HUB + name)[1:]: identity(files[HUB + name]) for name in names}))
    return path


def test_hub_weights_are_the_arrays_of_openais_files(small_model, tmp_path, monkeypatch):
    # Both downloads must give the very same arrays; that those arrays make Hugging Face's
    # model is tests/test_load_weights.py's parity test.
    _, files = small_model
    with LoopbackServer(dict(files)) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        monkeypatch.setenv(MIRROR_MANIFEST_ENV, str(manifest_for(tmp_path, files)))
        settings, hub_params = download_and_load_gpt2("124M", tmp_path / "models",
                                                      source="huggingface")
        _, openai_params = download_and_load_gpt2("124M", tmp_path / "models")
    assert settings == SMALL
    assert sorted(p.name for p in (tmp_path / "models" / "gpt2").iterdir()
                  if not p.name.startswith(".")) == ["config.json", "model.safetensors"]
    np.testing.assert_equal(hub_params, openai_params)
    assert len(hub_params["blocks"]) == SMALL["n_layer"]  # not two empty trees


def test_the_hubs_names_and_its_buffers_load_like_openais_files(tmp_path, monkeypatch):
    # The mirror's files (tools/make_gpt2_checkpoint.py --huggingface) use the hub's names,
    # without transformers' "transformer." prefix; the hub's own files also hold the
    # attention mask buffers and may hold the tied head, which are not weights to load.
    from safetensors.numpy import load_file, save_file

    tensors = make_gpt2_checkpoint(tmp_path / "openai", TINY_HPARAMS, seed=3,
                                   gpt2_dir=stand_in_tokenizer(tmp_path / "tokenizer"))
    hub_dir = tmp_path / "hub"
    write_hub_files(tensors, TINY_HPARAMS, hub_dir)
    arrays = load_file(hub_dir / "model.safetensors")
    n_ctx = TINY_HPARAMS["n_ctx"]
    arrays["h.0.attn.bias"] = np.tril(np.ones((1, 1, n_ctx, n_ctx), np.float32))
    arrays["h.1.attn.masked_bias"] = np.array(-1e4, np.float32)
    arrays["lm_head.weight"] = arrays["wte.weight"]
    save_file(arrays, hub_dir / "model.safetensors")
    files = {HUB + name: (hub_dir / name).read_bytes()
             for name in ("config.json", "model.safetensors")}
    files.update({f"/gpt2/124M/{p.name}": p.read_bytes() for p in (tmp_path / "openai").iterdir()})

    with LoopbackServer(files) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        monkeypatch.setenv(MIRROR_MANIFEST_ENV, str(manifest_for(tmp_path, files)))
        hub_settings, hub_params = download_and_load_gpt2("124M", tmp_path / "models",
                                                          source="huggingface")
        openai_settings, openai_params = download_and_load_gpt2("124M", tmp_path / "models",
                                                                source="openai")
    assert hub_settings == openai_settings == TINY_HPARAMS
    leaves = []

    def compare(a, b, where):
        if isinstance(a, dict):
            assert sorted(a) == sorted(b), where
            for key in a:
                compare(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                compare(x, y, f"{where}[{i}]")
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b), where
            leaves.append(where)

    compare(hub_params, openai_params, "params")
    assert len(leaves) == 4 + 12 * TINY_HPARAMS["n_layer"]  # wte, wpe, g, b + 12 per block


def test_a_truncated_download_is_refused_and_not_kept(small_model, tmp_path, monkeypatch):
    _, files = small_model
    weights = HUB + "model.safetensors"
    with LoopbackServer(dict(files, **{weights: files[weights][:100_000]})) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        monkeypatch.setenv(MIRROR_MANIFEST_ENV, str(manifest_for(tmp_path, files)))
        with pytest.raises(DownloadError, match=f"got 100,000 bytes, expected "
                                                f"{len(files[weights]):,}"):
            download_and_load_gpt2("124M", tmp_path / "models", source="huggingface")
    assert not any(p.name.startswith("model.safetensors")
                   for p in (tmp_path / "models" / "gpt2").iterdir())


def test_a_corrupted_download_of_the_right_size_is_refused_by_its_hash(small_model, tmp_path,
                                                                       monkeypatch):
    _, files = small_model
    weights = HUB + "model.safetensors"
    damaged = bytearray(files[weights])
    damaged[-1000] ^= 0x40  # inside the last tensor's values: the header still reads fine
    with LoopbackServer(dict(files, **{weights: bytes(damaged)})) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        monkeypatch.setenv(MIRROR_MANIFEST_ENV, str(manifest_for(tmp_path, files)))
        with pytest.raises(DownloadError, match="model.safetensors(?s:.*)its SHA-256 is"):
            download_and_load_gpt2("124M", tmp_path / "models", source="huggingface")
    assert not (tmp_path / "models" / "gpt2" / "model.safetensors").exists()


def test_weights_not_in_the_manifest_meet_the_published_hash_or_at_least_the_header(
        small_model, tmp_path, monkeypatch):
    # The manifest names only config.json: the weights must then be what the hub publishes.
    _, files = small_model
    cut = {name: (data[:100_000] if name.endswith(".safetensors") else data)
           for name, data in files.items() if name.startswith(HUB)}
    medium = "/" + hub_mirror_path("gpt2-medium", "")
    served = dict(cut, **{name.replace(HUB, medium): data for name, data in cut.items()})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({(folder + "config.json")[1:]: identity(files[HUB + "config.json"])
                                    for folder in (HUB, medium)}))
    with LoopbackServer(served) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        monkeypatch.setenv(MIRROR_MANIFEST_ENV, str(manifest))
        # 124M: the hub's file is pinned by its size and SHA-256.
        with pytest.raises(DownloadError, match="got 100,000 bytes, expected 548,105,171"):
            download_and_load_gpt2("124M", tmp_path / "models", source="huggingface")
        # 355M's is not (we could not confirm its hash): a cut-off file fails its header.
        with pytest.raises(DownloadError, match="not a readable safetensors file"):
            download_and_load_gpt2("355M", tmp_path / "models", source="huggingface")


def test_by_default_a_model_other_than_the_published_one_is_refused(small_model, tmp_path,
                                                                    monkeypatch):
    _, files = small_model
    with LoopbackServer(dict(files)) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        monkeypatch.delenv(MIRROR_MANIFEST_ENV, raising=False)
        with pytest.raises(DownloadError, match=r"config.json(?s:.*)not the published GPT-2 124M"):
            download_and_load_gpt2("124M", tmp_path / "models", source="huggingface")
        assert [path for path, _ in server.requests] == [HUB + "config.json"]


def test_an_unknown_source_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="'hub'; choose one of: openai, huggingface"):
        download_and_load_gpt2("124M", tmp_path, source="hub")
