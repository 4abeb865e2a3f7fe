"""OpenAI-format GPT-2 checkpoints are read with TensorFlow or with NumPy alone (tf_checkpoint).

The checkpoints are written by TensorFlow itself (tools/make_gpt2_checkpoint.py),
filled with seeded random values, so every array read can be compared with
the array written.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpt2_weights
import gpt_download
import tf_checkpoint
from gpt_download import CheckpointError, load_gpt2_params_from_tf_ckpt
from tools.make_gpt2_checkpoint import make_gpt2_checkpoint
from tiny_models import TINY_HPARAMS as TINY

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # TensorFlow writes the checkpoints read here

READERS = ["tensorflow", "numpy"]


def write_tokenizer_standins(directory):
    """encoder.json and vocab.bpe stand-ins: the reader never opens them."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "encoder.json").write_text('{"!": 0}')
    (directory / "vocab.bpe").write_text("#version: 0.2\n")
    return directory


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """(folder, {OpenAI tensor name: array written}) of a tiny random checkpoint."""
    root = tmp_path_factory.mktemp("tiny_gpt2")
    tokenizer_dir = write_tokenizer_standins(root / "tokenizer")
    written = make_gpt2_checkpoint(root / "124M", TINY, seed=7, gpt2_dir=tokenizer_dir)
    return root / "124M", written


def copy_checkpoint(source, destination, skip=()):
    destination.mkdir(parents=True)
    for path in source.iterdir():
        if path.name not in skip:
            shutil.copyfile(path, destination / path.name)
    return destination


def leaves(tree, path=""):
    """{"blocks/0/attn/c_attn/w": array, ...} for every array in the nested params."""
    if isinstance(tree, np.ndarray):
        return {path: tree}
    items = enumerate(tree) if isinstance(tree, list) else tree.items()
    found = {}
    for key, subtree in items:
        found.update(leaves(subtree, f"{path}/{key}" if path else str(key)))
    return found


def test_the_maker_writes_openai_files_and_values(tiny_checkpoint):
    folder, written = tiny_checkpoint
    assert sorted(p.name for p in folder.iterdir()) == sorted(gpt_download.GPT2_FILES)
    assert (folder / "hparams.json").read_text() == (
        '{\n  "n_vocab": 64,\n  "n_ctx": 16,\n  "n_embd": 8,\n  "n_head": 2,\n  "n_layer": 2\n}\n')
    assert (folder / "checkpoint").read_text().splitlines()[0] == 'model_checkpoint_path: "model.ckpt"'
    assert len(written) == 2 + 12 * TINY["n_layer"] + 2
    assert written["model/h1/attn/c_attn/w"].shape == (1, 8, 24)
    # Every value random: no zero biases, gains near but not equal to 1.
    assert np.all(written["model/h0/attn/c_attn/b"] != 0)
    gains = written["model/ln_f/g"]
    assert np.all(np.abs(gains - 1) < 0.5) and len(np.unique(gains)) == gains.size


def test_param_count_and_weights_file_size():
    gpt2_124m = {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12}
    gpt2_355m = dict(gpt2_124m, n_embd=1024, n_head=16, n_layer=24)
    assert gpt2_weights.gpt2_param_count(gpt2_124m) == 124_439_808
    # OpenAI's published weights files: 4 bytes (float32) per parameter.
    assert 4 * gpt2_weights.gpt2_param_count(gpt2_124m) == 497_759_232
    assert 4 * gpt2_weights.gpt2_param_count(gpt2_355m) == 1_419_292_672


def test_param_count_matches_the_tiny_checkpoint(tiny_checkpoint):
    folder, written = tiny_checkpoint
    count = sum(array.size for array in written.values())
    assert gpt2_weights.gpt2_param_count(TINY) == count == 2400
    assert (folder / "model.ckpt.data-00000-of-00001").stat().st_size == 4 * count


@pytest.mark.parametrize("reader", READERS)
def test_reader_returns_the_written_values_in_place(tiny_checkpoint, reader):
    folder, written = tiny_checkpoint
    params = load_gpt2_params_from_tf_ckpt(folder / "model.ckpt", TINY, reader=reader)

    assert set(params) == {"wte", "wpe", "blocks", "g", "b"}
    assert len(params["blocks"]) == 2
    assert np.array_equal(params["wte"], written["model/wte"])
    assert np.array_equal(params["wpe"], written["model/wpe"])
    assert np.array_equal(params["g"], written["model/ln_f/g"])
    assert np.array_equal(params["b"], written["model/ln_f/b"])
    for i, block in enumerate(params["blocks"]):
        h = f"model/h{i}"
        assert set(block) == {"attn", "ln_1", "ln_2", "mlp"}
        pairs = {
            ("attn", "c_attn", "w"): written[f"{h}/attn/c_attn/w"][0],
            ("attn", "c_attn", "b"): written[f"{h}/attn/c_attn/b"],
            ("attn", "c_proj", "w"): written[f"{h}/attn/c_proj/w"][0],
            ("attn", "c_proj", "b"): written[f"{h}/attn/c_proj/b"],
            ("ln_1", "g"): written[f"{h}/ln_1/g"], ("ln_1", "b"): written[f"{h}/ln_1/b"],
            ("ln_2", "g"): written[f"{h}/ln_2/g"], ("ln_2", "b"): written[f"{h}/ln_2/b"],
            ("mlp", "c_fc", "w"): written[f"{h}/mlp/c_fc/w"][0],
            ("mlp", "c_fc", "b"): written[f"{h}/mlp/c_fc/b"],
            ("mlp", "c_proj", "w"): written[f"{h}/mlp/c_proj/w"][0],
            ("mlp", "c_proj", "b"): written[f"{h}/mlp/c_proj/b"],
        }
        for keys, expected in pairs.items():
            node = block
            for key in keys:
                node = node[key]
            assert np.array_equal(node, expected), (i, keys)
    assert len(leaves(params)) == len(written)


@pytest.mark.parametrize("reader", READERS)
def test_shapes_and_dtype(tiny_checkpoint, reader):
    folder, _ = tiny_checkpoint
    params = load_gpt2_params_from_tf_ckpt(folder / "model.ckpt", TINY, reader=reader)
    block = params["blocks"][1]
    assert params["wte"].shape == (64, 8) and params["wpe"].shape == (16, 8)
    assert block["attn"]["c_attn"]["w"].shape == (8, 24)
    assert block["attn"]["c_attn"]["b"].shape == (24,)
    assert block["attn"]["c_proj"]["w"].shape == (8, 8)
    assert block["mlp"]["c_fc"]["w"].shape == (8, 32)
    assert block["mlp"]["c_proj"]["w"].shape == (32, 8)
    assert block["ln_2"]["g"].shape == (8,) and params["g"].shape == (8,)
    assert all(a.dtype == np.float32 for a in leaves(params).values())


def test_tensorflow_and_numpy_readers_agree(tiny_checkpoint):
    folder, _ = tiny_checkpoint
    by_tf = leaves(load_gpt2_params_from_tf_ckpt(folder, TINY, reader="tensorflow"))
    by_numpy = leaves(load_gpt2_params_from_tf_ckpt(folder, TINY, reader="numpy"))
    assert by_tf.keys() == by_numpy.keys() and len(by_tf) == 28
    for path in by_tf:
        assert by_tf[path].shape == by_numpy[path].shape, path
        assert np.array_equal(by_tf[path], by_numpy[path]), path


def test_the_default_reader_is_numpy(tiny_checkpoint, monkeypatch):
    folder, written = tiny_checkpoint
    monkeypatch.setattr(tf_checkpoint, "_import_tensorflow", lambda: pytest.fail("imported TensorFlow"))
    params = load_gpt2_params_from_tf_ckpt(folder, TINY)
    assert np.array_equal(params["blocks"][0]["mlp"]["c_proj"]["w"], written["model/h0/mlp/c_proj/w"][0])


@pytest.mark.parametrize("reader", READERS)
def test_a_moved_checkpoint_whose_state_file_names_an_absolute_path(tiny_checkpoint, tmp_path, reader):
    folder, written = tiny_checkpoint
    moved = copy_checkpoint(folder, tmp_path / "moved")
    (moved / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/124M/model.ckpt"\n')
    params = load_gpt2_params_from_tf_ckpt(moved, TINY, reader=reader)
    assert np.array_equal(params["wte"], written["model/wte"])


@pytest.mark.parametrize("reader", READERS)
def test_hparams_with_more_layers_than_the_checkpoint(tiny_checkpoint, reader):
    folder, _ = tiny_checkpoint
    with pytest.raises(CheckpointError, match=r"lacks model/h2/ln_1/g and 11 more tensors.*same model"):
        load_gpt2_params_from_tf_ckpt(folder, dict(TINY, n_layer=3), reader=reader)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("wrong, message", [
    ({"n_embd": 16}, r"model/wte .* has shape \(64, 8\), but the hparams call for \(64, 16\)"),
    ({"n_vocab": 65}, r"model/wte .* has shape \(64, 8\), but the hparams call for \(65, 8\)"),
    ({"n_ctx": 32}, r"model/wpe .* has shape \(16, 8\), but the hparams call for \(32, 8\)"),
])
def test_hparams_that_disagree_with_the_shapes(tiny_checkpoint, reader, wrong, message):
    folder, _ = tiny_checkpoint
    with pytest.raises(CheckpointError, match=message):
        load_gpt2_params_from_tf_ckpt(folder, dict(TINY, **wrong), reader=reader)


@pytest.mark.parametrize("settings, message", [
    ({key: value for key, value in TINY.items() if key != "n_layer"}, "n_layer"),
    (dict(TINY, n_embd="8"), "n_embd"),
    (dict(TINY, n_head=3), "not divisible"),
])
def test_incomplete_or_inconsistent_settings(tiny_checkpoint, settings, message):
    folder, _ = tiny_checkpoint
    with pytest.raises(CheckpointError, match=message):
        load_gpt2_params_from_tf_ckpt(folder, settings, reader="numpy")


@pytest.mark.parametrize("reader", READERS)
def test_no_checkpoint_there(tmp_path, reader):
    with pytest.raises(FileNotFoundError, match=r"No TensorFlow checkpoint .*download_and_load_gpt2"):
        load_gpt2_params_from_tf_ckpt(tmp_path / "124M" / "model.ckpt", TINY, reader=reader)


@pytest.mark.parametrize("reader", READERS)
def test_weights_file_missing(tiny_checkpoint, tmp_path, reader):
    folder, _ = tiny_checkpoint
    partial = copy_checkpoint(folder, tmp_path / "124M", skip={"model.ckpt.data-00000-of-00001"})
    with pytest.raises(FileNotFoundError, match="not the weights"):
        load_gpt2_params_from_tf_ckpt(partial, TINY, reader=reader)


@pytest.mark.parametrize("reader", READERS)
def test_truncated_weights_file(tiny_checkpoint, tmp_path, reader):
    folder, _ = tiny_checkpoint
    damaged = copy_checkpoint(folder, tmp_path / "124M")
    data = damaged / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="download it again"):
        load_gpt2_params_from_tf_ckpt(damaged, TINY, reader=reader)


@pytest.mark.parametrize("reader", READERS)
def test_index_that_is_not_a_checkpoint_index(tiny_checkpoint, tmp_path, reader):
    folder, _ = tiny_checkpoint
    damaged = copy_checkpoint(folder, tmp_path / "124M")
    (damaged / "model.ckpt.index").write_bytes(b"<html>Not found</html>" * 10)
    with pytest.raises(CheckpointError, match="download it again"):
        load_gpt2_params_from_tf_ckpt(damaged, TINY, reader=reader)


def test_numpy_reader_refuses_compressed_blocks(tiny_checkpoint, tmp_path):
    folder, _ = tiny_checkpoint
    damaged = copy_checkpoint(folder, tmp_path / "124M")
    index = damaged / "model.ckpt.index"
    data = bytearray(index.read_bytes())
    # The footer's second block handle (after the metaindex handle) locates the index block;
    # the byte after a block's contents is its compression type. 1 = Snappy.
    _, pos = tf_checkpoint._read_block_handle(data[-48:], 0)
    (offset, size), _ = tf_checkpoint._read_block_handle(data[-48:], pos)
    assert data[offset + size] == 0
    data[offset + size] = 1
    index.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="compressed block.*reader='tensorflow'"):
        load_gpt2_params_from_tf_ckpt(damaged, TINY, reader="numpy")


def test_varint_and_protobuf_decoding():
    assert tf_checkpoint._read_varint(b"\xac\x02", 0) == (300, 2)
    assert tf_checkpoint._read_varint(b"\x7f\x01", 0) == (127, 1)
    # BundleEntryProto{dtype: 1, shape: {dim {size: 3} dim {size: 4}}, offset: 300, size: 48}
    entry = b"\x08\x01" + b"\x12\x08\x12\x02\x08\x03\x12\x02\x08\x04" + b"\x20\xac\x02" + b"\x28\x30"
    parsed = tf_checkpoint._parse_bundle_entry(entry)
    assert (parsed.dtype, parsed.shape, parsed.offset, parsed.size) == (1, (3, 4), 300, 48)
    with pytest.raises(ValueError, match="varint"):
        tf_checkpoint._read_varint(b"\x80\x80", 0)


def test_unknown_reader(tiny_checkpoint):
    folder, _ = tiny_checkpoint
    with pytest.raises(ValueError, match="numpy, tensorflow"):
        load_gpt2_params_from_tf_ckpt(folder, TINY, reader="torch")


def test_importing_gpt_download_does_not_import_tensorflow():
    code = "import sys, gpt_download; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
