"""A non-editable install ships every package: pyproject.toml lists them one by one (the grammar
folder is mapped in as growdsl.grammars), so a new subpackage must be added there too."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package_under_growdsl():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "growdsl").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "growdsl.grammars" in listed and (ROOT / "grammars" / "growdsl.lark").is_file()
