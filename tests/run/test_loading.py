"""A run's trained model loads back: exactly through `load_run` (graph.json + model.pt), and
into a module built from its `final.grow` by parameter order; for every shipped growing spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from growdsl import api
from growdsl.cli import main
from growdsl.errors import RunError
from growdsl.lang import parse_text
from growdsl.run.loading import weights_by_order

SPECS = Path(__file__).parents[2] / "specs"
GROWING = sorted(p.name for p in SPECS.glob("*.grow") if re.search(r"^grow", p.read_text(), re.M))


@pytest.mark.parametrize("name", [*GROWING, "search_space.grow"])
def test_a_grown_model_loads_back_both_ways(name, tmp_path):
    text = (SPECS / name).read_text()
    text = re.sub(r"every \d+ epochs", "every 1 epochs", text)
    text = re.sub(r"^(\s*)epochs \d+", r"\g<1>epochs 2", text, flags=re.M)
    run = api.run_spec(parse_text(text, str(tmp_path / name)), tmp_path / "run", quiet=True)
    loaded = api.load_run(run.dir)
    x = torch.randn(5, *run.graph.input_shape)
    run.model.eval()
    with torch.no_grad():
        expected = run.model(x.to(next(run.model.parameters()).device)).cpu()
        assert torch.equal(loaded.model(x), expected)
        fresh = api.build_model(api.lower(api.load(run.dir / "final.grow")))
        weights = torch.load(run.dir / "model.pt", weights_only=True)
        fresh.load_state_dict(weights_by_order(fresh, weights))
        fresh.eval()
        assert torch.equal(fresh(x), expected)


def test_loading_a_folder_that_is_not_a_finished_run_is_a_clean_error(tmp_path):
    with pytest.raises(RunError, match="not a finished run"):
        api.load_run(tmp_path)
    result = CliRunner().invoke(main, ["export", str(tmp_path), "--format", "grow"])
    assert result.exit_code == 2
