"""Plugin tests change process-wide tables (the op table, the data catalog, the enabled and loaded
plugins); `isolated_plugins` puts every one of them back after each test, so a plugin's names never
leak into another test's messages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from growdsl import plugins
from growdsl.ir import ops
from growdsl.run import datasets

sys.path.insert(0, str(Path(__file__).parent))
from plugin_example import doc_files  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_plugins():
    saved_ops, saved_weight = dict(ops.OPS), list(ops.WEIGHT_OPS)
    saved_catalog = dict(datasets.CATALOG)
    saved_enabled, saved_loaded = list(plugins._enabled), dict(plugins._loaded)
    saved_modules = set(sys.modules)
    yield
    ops.OPS.clear()
    ops.OPS.update(saved_ops)
    ops.WEIGHT_OPS[:] = saved_weight
    datasets.CATALOG.clear()
    datasets.CATALOG.update(saved_catalog)
    plugins._enabled[:] = saved_enabled
    plugins._loaded.clear()
    plugins._loaded.update(saved_loaded)
    for name in set(sys.modules) - saved_modules:
        if name.startswith("growdsl_plugin_") or name.startswith("plugintest_"):
            del sys.modules[name]


@pytest.fixture
def example(tmp_path, monkeypatch):
    """docs/plugins.md's files written to a temporary folder (the working directory), with the
    digits as the NumPy file the example reads."""
    import numpy as np
    from sklearn.datasets import load_digits

    for name, text in doc_files().items():
        (tmp_path / name).write_text(text)
    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=digits.data, y=digits.target)
    monkeypatch.chdir(tmp_path)
    return tmp_path
