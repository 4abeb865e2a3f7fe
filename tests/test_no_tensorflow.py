"""Loading GPT-2 the default way never imports TensorFlow into the learner's process.

TensorFlow and a recent PyTorch in one process can crash it once training starts
(a segmentation fault in chapter 6), so the NumPy reader is the default everywhere.
Each check runs in a fresh interpreter, where `sys.modules` shows what was imported.
TensorFlow is installed for the tests (requirements-test.txt): were it missing, these
checks would prove nothing, so that fails too.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_download import LoopbackServer
from tiny_models import TINY_HPARAMS as TINY

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

# Runs a script as `python script args...` would, then reports whether TensorFlow got loaded.
RUN_AND_REPORT = textwrap.dedent("""
    import runpy, sys
    sys.argv = sys.argv[1:]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exit:
        if exit.code:
            raise
    print("tensorflow loaded:", "tensorflow" in sys.modules)
""")


def python(code, *args, mirror):
    env = {**os.environ, "LLM_COURSE_MIRROR": mirror}
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module", autouse=True)
def tensorflow_is_installed():
    assert importlib.util.find_spec("tensorflow") is not None, (
        "these tests need TensorFlow installed (pip install -r requirements-test.txt)")


@pytest.fixture(scope="module")
def tiny_mirror(tmp_path_factory):
    from tools.make_gpt2_checkpoint import make_gpt2_checkpoint

    root = tmp_path_factory.mktemp("mirror")
    (root / "encoder.json").write_text('{"!": 0}')
    (root / "vocab.bpe").write_text("#version: 0.2\n")
    make_gpt2_checkpoint(root / "124M", TINY, seed=3, gpt2_dir=root)
    files = {f"/gpt2/124M/{p.name}": p.read_bytes() for p in (root / "124M").iterdir()}
    with LoopbackServer(files) as server:
        yield server.url


@pytest.fixture(scope="module")
def gpt2_small_mirror(tmp_path_factory):
    """A mirror serving a checkpoint of GPT-2 small's real shape (random values).

    The test session's mirror holds one (conftest.py); without it one is made and served here.
    """
    if os.environ.get("LLM_COURSE_MIRROR"):
        yield os.environ["LLM_COURSE_MIRROR"]
        return
    from tools.make_gpt2_checkpoint import make_gpt2_checkpoint

    from gpt_download import published_gpt2_hparams

    folder = tmp_path_factory.mktemp("mirror124M")
    make_gpt2_checkpoint(folder / "124M", published_gpt2_hparams()["124M"], seed=0)
    files = {f"/gpt2/124M/{p.name}": p.read_bytes() for p in (folder / "124M").iterdir()}
    with LoopbackServer(files) as server:
        yield server.url


def test_download_and_load_gpt2_by_default(tiny_mirror, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from gpt_download import download_and_load_gpt2
        settings, params = download_and_load_gpt2("124M", {str(tmp_path)!r})
        assert settings["n_layer"] == {TINY["n_layer"]}
        print("tensorflow loaded:", "tensorflow" in sys.modules)
    """)
    assert python(code, mirror=tiny_mirror).strip() == "tensorflow loaded: False"


def test_the_tensorflow_reader_stays_available_on_request(tiny_mirror, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from gpt_download import download_and_load_gpt2
        download_and_load_gpt2("124M", {str(tmp_path)!r}, reader="tensorflow")
        print("tensorflow loaded:", "tensorflow" in sys.modules)
    """)
    assert python(code, mirror=tiny_mirror).strip().endswith("tensorflow loaded: True")


@pytest.mark.needs_data
@pytest.mark.parametrize("script, args", [
    ("generate.py", ["--prompt", "Hello", "--tokens", 2]),
    ("chat.py", ["--ask", "Say hi.", "--tokens", 2]),
])
def test_cli_loading_from_a_download(script, args, gpt2_small_mirror, tmp_path):
    out = python(RUN_AND_REPORT, ROOT / "scripts" / script, *args, "--size", "small",
                 "--models-dir", tmp_path, "--device", "cpu", mirror=gpt2_small_mirror)
    assert out.strip().endswith("tensorflow loaded: False"), out
