"""TensorFlow's checkpoint format ("tensor bundle"), read with NumPy alone or with TensorFlow.

OpenAI published GPT-2 as TensorFlow checkpoints. This module reads them without
importing TensorFlow: TensorFlow and a recent PyTorch loaded into one process can
crash it (a segmentation fault once training starts). `reader="tensorflow"` uses
TensorFlow's own reader instead; use it in a process of its own (a script that
converts and saves the weights), never in one that goes on to train.

    open_checkpoint(prefix, reader="numpy")  -> .shapes() {name: shape}, .read(name) array
    checkpoint_prefix(path)                  -> the prefix (models/124M/model.ckpt) of a folder
    read_index(index_path)                   -> (num_shards, {name: entry}) of model.ckpt.index
    shard_problem(path, entries, shard_id)   -> None, or what is wrong with a data shard

Every tensor the NumPy reader reads is checked against the CRC32C checksum the index
stores for it, as TensorFlow's own reader does. It knows nothing of GPT-2, and imports
nothing from the chapters.
"""

import os
import re
from collections import namedtuple
from pathlib import Path

import numpy as np

CHECKPOINT_READERS = ("numpy", "tensorflow")


class CheckpointError(ValueError):
    """A checkpoint is damaged, unreadable, or does not match its hparams."""


class DamagedData(CheckpointError):
    """A tensor's bytes do not match the checksum the index stores for them."""

    def __init__(self, problem, advice, path):
        super().__init__(f"{problem} {advice}")
        self.problem = problem  # what is wrong, without the advice
        self.path = path


def open_checkpoint(prefix, reader="numpy"):
    """The checkpoint at `prefix` (see checkpoint_prefix), opened with `reader`.

    "numpy" (the default) is this module's reader; "tensorflow" imports TensorFlow
    into this process. Both give `.shapes()`, {tensor name: shape}, and `.read(name)`,
    the tensor as a NumPy array; both raise CheckpointError for a damaged file.
    """
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


def checkpoint_prefix(path):
    """The checkpoint's file prefix (models/124M/model.ckpt), given it or its directory."""
    path = Path(path)
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


def read_index(index_path):
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


def shard_problem(path, entries, shard_id):
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
            self._num_shards, self._entries = read_index(index)
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
            raise DamagedData(f"{data_file} ends before the data of {name}: it is "
                               "incomplete.", advice, data_file)
        if _masked_crc32c(raw) != entry.crc32c:
            raise DamagedData(f"{data_file} is damaged: the bytes of {name} do not match "
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
