"""The test session sets up what the tests need, so `python -m pytest` runs on any clone.

- Chapters 5-7 run at the quick size, unless the caller chose one (LLM_COURSE_RUN), and
  in float32 (LLM_COURSE_DTYPE), unless the caller chose otherwise.
- The repository is on PYTHONPATH, so the tools run in subprocesses import its modules.
- With LLM_COURSE_MIRROR unset and the course data at hand (the folder LLM_COURSE_DATA
  names, else ../shared/data beside the repository), the session serves that data on
  loopback as the mirror, together with a GPT-2 124M checkpoint of random values (made
  once, into .cache/test-mirror, and reused), and fills tiktoken's cache from it.
- Without the data, the tests marked `needs_data` (and the notebooks) are skipped, with
  one line saying what is missing. Tiers: `-m "not slow"` runs the unit tests.
"""

import hashlib
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from filelock import FileLock

from tools.mirror import MultiRootHandler, fill_tiktoken_cache

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
DATA_ENV = "LLM_COURSE_DATA"
MIRROR_ENV = "LLM_COURSE_MIRROR"
MAKE_CHECKPOINT = ROOT / "tools" / "make_gpt2_checkpoint.py"
NO_DATA = (f"needs the course data: put it in ../shared/data beside the repository, or set "
           f"{DATA_ENV} to a folder laid out like it (CONTRIBUTING.md: Run the tests), or set "
           f"{MIRROR_ENV} to a mirror serving it")

_mirror = None  # the loopback server this session started, if any


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: notebooks, tools run in processes of their own, "
                                       "TensorFlow, training runs: left out by -m 'not slow'")
    config.addinivalue_line("markers", f"needs_data: {NO_DATA.replace('needs', 'uses')}")
    if not os.environ.get("LLM_COURSE_RUN") and not os.environ.get("LLM_COURSE_QUICK"):
        os.environ["LLM_COURSE_RUN"] = "quick"
    # float32 everywhere, so results do not depend on the machine's bfloat16 speed; the
    # bfloat16 tests ask for it themselves.
    os.environ.setdefault("LLM_COURSE_DTYPE", "float32")
    # The tools the tests run in processes of their own find the course's modules as they
    # would after `pip install -e .`.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    data = course_data_folder()
    if os.environ.get(MIRROR_ENV) or data is None:
        return
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        if not (CACHE / "tiktoken").is_dir():
            fill_tiktoken_cache(data / "gpt2", CACHE / "tiktoken")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(CACHE / "tiktoken")
    checkpoint_root = random_checkpoint(data / "gpt2")
    os.environ["LLM_COURSE_MIRROR_MANIFEST"] = str(checkpoint_root / "mirror-manifest.json")
    os.environ[MIRROR_ENV] = start_mirror([data, checkpoint_root])


def pytest_unconfigure(config):
    if _mirror is not None:
        _mirror.shutdown()
        _mirror.server_close()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":  # nbval's cells: every chapter downloads its data
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.needs_data)


def pytest_runtest_setup(item):
    # Skipped from here, not by a marker, so pytest's summary gives one line for them all.
    if item.get_closest_marker("needs_data") and not os.environ.get(MIRROR_ENV):
        pytest.skip(NO_DATA)


def course_data_folder():
    """The folder holding the course's data files, or None where there is none."""
    named = os.environ.get(DATA_ENV, "").strip()
    folder = Path(named) if named else ROOT.parent / "shared" / "data"
    complete = all((folder / "gpt2" / name).is_file() for name in ("encoder.json", "vocab.bpe"))
    if named and not complete:
        raise pytest.UsageError(f"{DATA_ENV}={named}: no gpt2/encoder.json and gpt2/vocab.bpe "
                                "there; lay it out like ../shared/data (CONTRIBUTING.md: Run the tests)")
    return folder if complete else None


def random_checkpoint(gpt2_dir):
    """The folder holding GPT-2 124M with random values, in OpenAI's files and the hub's.

    Made once (TensorFlow writes it, in a process of its own) and reused until
    tools/make_gpt2_checkpoint.py changes; a lock keeps two sessions from writing at once.
    """
    folder = CACHE / "test-mirror"
    stamp = folder / "made-by"
    maker = hashlib.sha256(MAKE_CHECKPOINT.read_bytes()).hexdigest()
    CACHE.mkdir(exist_ok=True)
    with FileLock(CACHE / "test-mirror.lock"):
        if not stamp.is_file() or stamp.read_text() != maker:
            stamp.unlink(missing_ok=True)
            print(f"conftest: writing a random GPT-2 124M checkpoint to {folder} (once)",
                  file=sys.stderr)
            subprocess.run([sys.executable, str(MAKE_CHECKPOINT), str(folder), "--size", "124M",
                            "--huggingface", "--gpt2-dir", str(gpt2_dir)],
                           check=True, stdout=subprocess.DEVNULL)
            stamp.write_text(maker)
    return folder


def start_mirror(roots):
    """Serve `roots` on a free loopback port for this session; returns the base URL."""
    global _mirror
    _mirror = ThreadingHTTPServer(("127.0.0.1", 0), partial(MultiRootHandler, roots=roots))
    threading.Thread(target=_mirror.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{_mirror.server_address[1]}"
