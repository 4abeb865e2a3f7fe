"""previous_chapters.py is generated from the notebooks; these tests keep the two in step."""

import json
import subprocess
import sys

import pytest

from tools import export


def write_notebook(path, *cells):
    notebook = {
        "cells": [{"cell_type": "code", "source": source, "metadata": {},
                   "outputs": [], "execution_count": None} for source in cells],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


def test_committed_module_matches_the_notebooks():
    assert export.MODULE.read_text(encoding="utf-8") == export.build_module(), (
        "previous_chapters.py differs from the notebooks: run `python tools/export.py`")


def test_every_chapter_notebook_is_exported():
    names = [nb.name for nb in export.chapter_notebooks()]
    assert names[:4] == ["ch02_text_data.ipynb", "appendix_f_bpe.ipynb", "ch03_attention.ipynb",
                         "ch04_gpt_model.ipynb"]  # each appendix right after the chapter it builds on
    assert names.index("appendix_d_speed.ipynb") == names.index("ch05_pretraining.ipynb") + 1
    module = export.MODULE.read_text(encoding="utf-8")
    for name in names:
        assert name in module


def test_export_cells_land_in_chapter_order_with_imports_hoisted(tmp_path):
    write_notebook(tmp_path / "ch03_later.ipynb", "#| export\nimport math\n\ndef later():\n    return math.pi")
    write_notebook(tmp_path / "ch02_first.ipynb",
                   "#| export\nimport math\n\nSIZE = 3", "print('not exported')")
    module = export.build_module(tmp_path)
    assert module.count("import math") == 1
    assert module.index("import math") < module.index("SIZE = 3") < module.index("def later")
    assert "not exported" not in module
    assert "# Chapter 2: ch02_first.ipynb" in module


def test_imports_from_one_module_are_merged_into_one_statement(tmp_path):
    write_notebook(tmp_path / "ch02_first.ipynb",
                   "#| export\nfrom torch.utils.data import DataLoader, Dataset\nimport numpy as np\n\nA = 1")
    write_notebook(tmp_path / "ch03_later.ipynb",
                   "#| export\nfrom torch.utils.data import Dataset\nfrom torch.utils.data import Subset\n"
                   "import numpy as np\n\nB = 2")
    module = export.build_module(tmp_path)
    assert module.count("from torch.utils.data import") == 1
    assert "from torch.utils.data import DataLoader, Dataset, Subset\n" in module
    assert module.count("import numpy as np") == 1


def test_importing_the_module_does_not_load_plotting_or_data_libraries():
    code = ("import sys, previous_chapters; "
            "print(sorted(m for m in ('matplotlib', 'pandas', 'psutil') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=export.ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_chapter_may_import_from_earlier_chapters(tmp_path):
    write_notebook(tmp_path / "ch02_a.ipynb", "#| export\ndef early():\n    pass")
    write_notebook(tmp_path / "ch03_b.ipynb", "from previous_chapters import early\nearly()")
    export.build_module(tmp_path)


@pytest.mark.parametrize("importer", ["ch02_a.ipynb", "ch03_b.ipynb"])
def test_a_chapter_may_not_import_what_it_or_a_later_chapter_defines(tmp_path, importer):
    write_notebook(tmp_path / "ch02_a.ipynb", "#| export\ndef early():\n    pass")
    write_notebook(tmp_path / "ch03_b.ipynb", "#| export\ndef late():\n    pass")
    with open(tmp_path / importer) as f:
        notebook = json.load(f)
    notebook["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [],
                              "execution_count": None,
                              "source": "%matplotlib inline\nfrom previous_chapters import late"})
    (tmp_path / importer).write_text(json.dumps(notebook))
    with pytest.raises(export.ExportError, match="ch03_b.ipynb defines it"):
        export.build_module(tmp_path)


def test_importing_a_name_no_chapter_exports_fails(tmp_path):
    write_notebook(tmp_path / "ch02_a.ipynb", "from previous_chapters import missing")
    with pytest.raises(export.ExportError, match="no chapter exports 'missing'"):
        export.build_module(tmp_path)


def test_a_name_defined_twice_fails(tmp_path):
    write_notebook(tmp_path / "ch02_a.ipynb", "#| export\ndef calc_loss():\n    pass")
    write_notebook(tmp_path / "ch06_b.ipynb", "#| export\ncalc_loss = None")
    with pytest.raises(export.ExportError, match="'calc_loss' is already defined"):
        export.build_module(tmp_path)


@pytest.mark.parametrize("statement", ["print('hi')", "model = make_model()", "for i in range(3):\n    pass"])
def test_export_cells_may_not_run_work(tmp_path, statement):
    write_notebook(tmp_path / "ch02_a.ipynb", f"#| export\n{statement}")
    with pytest.raises(export.ExportError, match="may only import, define"):
        export.build_module(tmp_path)
