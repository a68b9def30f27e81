"""The replay law: folding a run's logged edits over its spec's lowered graph gives `graph.json`;
and every growth line says how much the step changed the network's outputs (`delta_out`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growdsl import api
from growdsl.cli import main
from growdsl.grow.net import Net
from growdsl.grow.split import SplitTransform
from growdsl.grow.step import apply_chosen
from growdsl.lang import parse_text, parse_value
from growdsl.run.datasets import load_data

SPECS = Path(__file__).parents[2] / "specs"
GROWING = sorted(p.name for p in SPECS.glob("*.grow") if re.search(r"^grow", p.read_text(), re.M))


def _quick(text: str, epochs: int) -> str:
    """The spec with a growth step after every epoch and only `epochs` epochs."""
    text = re.sub(r"every \d+ epochs", "every 1 epochs", text)
    return re.sub(r"^(\s*)epochs \d+", rf"\g<1>epochs {epochs}", text, flags=re.M)


def _grows(run_dir: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]
    return [r for r in lines if r["event"] == "grow"]


@pytest.mark.parametrize("name", GROWING)
def test_every_shipped_growing_spec_replays_to_its_graph(name, tmp_path):
    text = (SPECS / name).read_text()
    epochs = 1 if "tasks:" in text else 3
    spec = parse_text(_quick(text, epochs), str(tmp_path / name))
    run = api.run_spec(spec, tmp_path / "run", quiet=True)
    grows = _grows(run.dir)
    assert grows and all("edit" in g and "delta_out" in g for g in grows)
    assert api.replay_difference(run.dir) is None
    assert api.replay(run.dir).g.nodes.keys() == run.graph.g.nodes.keys()


SPACE = """\
data digits(test: 0.3)
model m {{
    flatten
    linear({lo}..{hi}) as h1 tanh
    repeat 1..{depth} {{ linear({lo}) relu }}
    linear({lo}..{hi}) as h2 relu
    linear(classes)
}}
train {{ epochs {epochs} batch 256 optimizer sgd(lr: 0.05, momentum: 0.9) seed {seed} }}
grow {{
    every 1 epochs
    {transform}
}}
"""
TRANSFORMS = st.sampled_from(
    [
        "split(method: random, count: 3)",
        "split(method: fast, frac: 0.5, samples: 64)",
        "split(method: signed, count: 2, samples: 64)",
        "firefly(wider: 4, candidates: 2, deeper: 1, count: 3, steps: 2, samples: 64)",
        "firefly(wider: 2, candidates: 0, deeper: 2, frac: 0.5, steps: 1, samples: 64)",
    ]
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lo=st.integers(2, 6),
    extra=st.integers(1, 8),
    depth=st.integers(1, 3),
    epochs=st.integers(2, 3),
    seed=st.integers(0, 5),
    transform=TRANSFORMS,
)
def test_random_growth_runs_replay_to_their_graph(
    tmp_path_factory, lo, extra, depth, epochs, seed, transform
):
    text = SPACE.format(lo=lo, hi=lo + extra, depth=depth, epochs=epochs, seed=seed, transform=transform)
    out = tmp_path_factory.mktemp("run")
    run = api.run_spec(parse_text(text, "random.grow"), out / "r", quiet=True)
    assert api.replay_difference(run.dir) is None


@pytest.fixture(scope="module")
def grown_run(tmp_path_factory) -> Path:
    text = _quick((SPECS / "quickstart.grow").read_text(), 3)
    out = tmp_path_factory.mktemp("quick") / "run"
    api.run_spec(parse_text(text, "quickstart.grow"), out, quiet=True)
    return out


def test_history_replay_exits_0_when_the_graph_replays_and_1_naming_the_difference(grown_run, tmp_path):
    ok = CliRunner().invoke(main, ["history", str(grown_run), "--replay"])
    assert ok.exit_code == 0 and "gives graph.json" in ok.output
    listing = CliRunner().invoke(main, ["history", str(grown_run)])
    assert listing.exit_code == 0 and "widen(node: mlp.hidden" in listing.output
    tampered = tmp_path / "run"
    tampered.mkdir()
    for f in ("spec.grow", "history.jsonl", "graph.json"):
        (tampered / f).write_bytes((grown_run / f).read_bytes())
    graph = json.loads((tampered / "graph.json").read_text())
    node = next(n for n in graph["nodes"] if n["id"] == "mlp.hidden1")
    node["args"]["out"] += 1
    (tampered / "graph.json").write_text(json.dumps(graph))
    bad = CliRunner().invoke(main, ["history", str(tampered), "--replay"])
    assert bad.exit_code == 1 and "node mlp.hidden1: args" in bad.output


def test_history_of_a_folder_that_is_not_a_run_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(main, ["history", str(tmp_path), "--replay"])
    assert result.exit_code == 2 and "not a run folder" in result.output


def _net(text: str) -> Net:
    torch.manual_seed(0)
    graph = api.lower(parse_text(text, "t.grow"))
    return Net(graph, api.build_model(graph))


def test_delta_out_is_zero_for_a_split_at_eps_zero_and_small_for_eps_positive():
    text = "data digits\nmodel m { flatten linear(8..32) as h tanh linear(classes) }"
    net = _net(text)

    data = load_data(parse_text(text, "t.grow").data, 0).train
    proposer = SplitTransform.from_call(parse_value("split(method: fast, eps: 0.1, count: 4)"))
    cands = proposer.propose(net, data, F.cross_entropy, torch.Generator().manual_seed(0))[:4]
    assert cands
    deltas = {}
    for eps in ("0", "0.1"):
        split = SplitTransform.from_call(parse_value(f"split(method: fast, eps: {eps}, count: 4)"))
        applied = apply_chosen(net, [(split, cands)], probe=data[0][:256])
        deltas[eps] = applied.records[0]["delta_out"]
    assert deltas["0"] < 1e-5 < deltas["0.1"] < 1.0
