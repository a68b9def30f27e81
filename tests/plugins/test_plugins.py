"""Plugins in one process: lazy loading, the op table and catalog entries they add, their errors,
and growth of a plugin op (docs/plugins.md)."""

from __future__ import annotations

import textwrap

import pytest
import torch
import torch.nn.functional as F

from growdsl import api, plugins
from growdsl.errors import DataError, PluginError, ShapeError, SpecError
from growdsl.grow.net import Net
from growdsl.grow.split import SplitTransform
from growdsl.grow.step import apply_chosen
from growdsl.ir import costs, infer_shapes, lower
from growdsl.lang import parse_text, parse_value
from growdsl.run import datasets

SPEC = 'data npz(path: "digits.npz")\nmodel m {{ {body} }}\n'


def _check(body: str):
    return api.check(parse_text(SPEC.format(body=body), "t.grow"))


def test_enabled_plugin_loads_only_when_the_spec_names_what_it_provides(example):
    plugins.enable(["myplugin.py"])
    api.check(parse_text("data digits model m { flatten linear(classes) }", "t.grow"))
    assert plugins.loaded() == []
    result = _check("layernorm ortho(8..32) as hidden tanh linear(classes)")
    assert plugins.loaded() == [str(example / "myplugin.py")]
    assert result.params == 2 * 64 + (64 * 8 + 8) + (8 * 10 + 10)
    assert result.graph["m.hidden"]["width"] == (8, 32)


def test_plugin_costs_are_what_the_compiled_module_has(example):
    plugins.load_plugins(["myplugin.py"])
    graph = api.lower(parse_text(SPEC.format(body="layernorm ortho(12) tanh linear(classes)"), "t.grow"))
    model = api.build_model(graph)
    for node, (params, _) in costs(graph).items():
        if graph.kind(node) == "op":
            assert params == sum(p.numel() for p in model.module_at(node).parameters()), node
    assert isinstance(model.module_at("m.0"), torch.nn.LayerNorm)
    assert model(torch.randn(5, 64)).shape == (5, 10)


def test_a_plugins_shape_rule_rejects_an_input_at_the_nodes_place(example):
    plugins.load_plugins(["myplugin.py"])
    text = "data digits\nmodel m {\n  layernorm\n  flatten linear(classes)\n}\n"
    with pytest.raises(ShapeError) as err:
        api.check(parse_text(text, "t.grow"))
    assert "layernorm at m.0 needs a flat input but gets [1, 8, 8]" in err.value.message
    assert (err.value.span.line, err.value.span.col) == (3, 3)


def test_unknown_op_is_reported_at_its_place_with_the_plugin_hint_unless_it_is_a_typo():
    with pytest.raises(SpecError) as err:
        api.check(parse_text("data digits\nmodel m {\n  flatten layernorm linear(classes)\n}", "t.grow"))
    assert err.value.message.startswith("unknown op 'layernorm' (known: ")
    assert (err.value.span.line, err.value.span.col) == (3, 11)
    assert "a plugin may provide it" in err.value.hint and "--plugin" in err.value.hint
    with pytest.raises(SpecError) as err:
        api.check(parse_text("data digits\nmodel m {\n  flatten lineer(4) linear(classes)\n}", "t.grow"))
    assert err.value.message == "unknown op 'lineer': did you mean 'linear'?" and err.value.hint is None


def test_unknown_data_set_names_the_plugin_hint():
    with pytest.raises(SpecError) as err:
        api.check(parse_text("data npz model m { flatten linear(classes) }", "t.grow"))
    assert "unknown data set 'npz'" in err.value.message and "plugin" in err.value.hint


def test_entry_point_named_for_an_op_is_loaded_only_for_that_name(tmp_path, monkeypatch):
    """An installed package's entry point (a dist-info folder on sys.path, as pip leaves it)."""
    (tmp_path / "plugintest_ops.py").write_text(
        textwrap.dedent(
            """
            from torch import nn
            from growdsl.plugins import register_op
            register_op("swish2", lambda args, inp: nn.SiLU(), transparent=True)
            """
        )
    )
    dist = tmp_path / "plugintest-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugintest\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[growdsl.plugins]\nswish2 = plugintest_ops\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    api.check(parse_text("data digits model m { flatten linear(4) tanh linear(classes) }", "t.grow"))
    assert plugins.loaded() == []
    result = api.check(
        parse_text("data digits model m { flatten linear(4) swish2 linear(classes) }", "t.grow")
    )
    assert plugins.loaded() == ["plugintest_ops"]
    assert result.graph["m.2"]["op"] == "swish2"


def test_a_plugin_that_fails_to_import_is_a_plugin_error(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no GPU here')\n")
    plugins.enable([str(broken)])
    with pytest.raises(PluginError, match="broken.py failed to import: RuntimeError: no GPU here"):
        api.check(parse_text("data digits model m { flatten mystery linear(classes) }", "t.grow"))
    with pytest.raises(PluginError, match="'no_such_plugin_mod' is not an importable module"):
        plugins.load_plugins(["no_such_plugin_mod"])
    with pytest.raises(PluginError, match="does not exist"):
        plugins.load_plugins([str(tmp_path / "missing.py")])


def test_a_plugin_may_not_take_a_built_in_name_or_another_plugins(tmp_path):
    (tmp_path / "a.py").write_text(
        "from torch import nn\nfrom growdsl.plugins import register_op\n"
        "register_op('twin', lambda a, i: nn.Identity(), transparent=True)\n"
    )
    (tmp_path / "b.py").write_text((tmp_path / "a.py").read_text())
    (tmp_path / "c.py").write_text(
        "from growdsl.plugins import register_op\nregister_op('relu', lambda a, i: None, transparent=True)\n"
    )
    plugins.load_plugins([str(tmp_path / "a.py")])
    with pytest.raises(PluginError, match="'twin' is registered by both"):
        plugins.load_plugins([str(tmp_path / "b.py")])
    with pytest.raises(PluginError, match="registers the op 'relu', which is built in"):
        plugins.load_plugins([str(tmp_path / "c.py")])


def test_a_plugin_data_set_may_be_a_torch_dataset_and_is_checked_against_its_shape(tmp_path):
    (tmp_path / "sets.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch.utils.data import TensorDataset
            from growdsl.plugins import register_data
            x, y = torch.randn(50, 3), torch.arange(50) % 2
            register_data("pairs", lambda o, s: TensorDataset(x, y), shape=(3,), classes=2)
            register_data("liar", lambda o, s: (x, y), shape=(4,), classes=2)
            register_data("missing", lambda o, s: open("/nonexistent/file.npz"), shape=(3,), classes=2)
            """
        )
    )
    plugins.load_plugins([str(tmp_path / "sets.py")])
    splits = datasets.load_data(parse_value("pairs(test: 0.2, normalize: false)"), seed=0)
    assert splits.train[0].shape == (40, 3) and splits.test[0].shape == (10, 3)
    assert splits.train[1].dtype == torch.long
    with pytest.raises(
        PluginError, match=r"declares 1-d samples of shape \[4\] but loaded x of shape \[50, 3\]"
    ):
        datasets.load_data(parse_value("liar()"), seed=0)
    with pytest.raises(DataError, match="data set 'missing'.*nonexistent"):
        datasets.load_data(parse_value("missing()"), seed=0)


def test_a_layer_feeding_a_channel_mixing_op_is_not_widened_and_growth_says_why(example):
    plugins.load_plugins(["myplugin.py"])
    graph = lower(
        parse_text("model m { linear(4..8) as p layernorm tanh linear(classes) }", "t.grow"), (5,), 3
    )
    found, skipped = SplitTransform.from_call(parse_value("split()")).sites(graph)
    assert found == []
    assert skipped["m.p"] == "m.p's channels are mixed by layernorm at m.1, which a new channel would change"


def test_a_plugin_op_grows_by_splitting_with_delta_out_zero(example):
    """Splitting the plugin's `ortho` layer at eps 0: the net computes what it did (delta_out 0),
    its width grew, and the carry found the plugin layer's rows and its reader's columns."""
    plugins.load_plugins(["myplugin.py"])
    torch.manual_seed(0)
    graph = lower(
        parse_text("model m { ortho(4..8) as p tanh ortho(6) tanh linear(classes) }", "t.grow"), (5,), 3
    )
    net = Net(graph, api.build_model(graph).double())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=gen)
    net.model.eval()
    before = net.model(x)
    cands = SplitTransform.from_call(parse_value("split()")).propose(net, (x, y), F.cross_entropy, gen)
    assert {c.node for c in cands} == {"m.p"}  # m.4 is fixed-width; both are plugin ops
    zero_eps = SplitTransform.from_call(parse_value("split(eps: 0)"))
    applied = apply_chosen(net, [(zero_eps, cands)], probe=x)
    assert applied.net.graph["m.p"]["args"]["out"] > 4
    assert applied.records[0]["delta_out"] <= 1e-12  # rounding only: the net is unchanged
    applied.net.model.eval()
    torch.testing.assert_close(applied.net.model(x), before, atol=1e-12, rtol=1e-12)
    assert applied.net.model.module_at("m.p").weight.shape[0] == applied.net.graph["m.p"]["args"]["out"]
    assert infer_shapes(applied.net.graph)["m.2"].inp == (applied.net.graph["m.p"]["args"]["out"],)


def test_firefly_grows_a_plugin_op_and_its_new_neurons_at_zero_eps_leave_outputs_unchanged(example):
    import dataclasses

    from growdsl.grow.firefly import FireflyTransform

    plugins.load_plugins(["myplugin.py"])
    spec = parse_text(
        SPEC.format(body="layernorm ortho(6..20) as h tanh linear(classes)")
        + "grow { firefly(wider: 3, candidates: 3, steps: 3, samples: 64) }\n",
        "t.grow",
    )
    graph = api.lower(spec)
    torch.manual_seed(0)
    net = Net(graph, api.build_model(graph).double().eval())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 64, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 10, (96,), generator=gen)
    firefly = FireflyTransform.from_call(spec.grow.statements[-1].call)
    cands = firefly.propose(net, (x, y), F.cross_entropy, torch.Generator().manual_seed(1))
    assert {c.detail["kind"] for c in cands} == {"new", "split"} and {c.node for c in cands} == {"m.h"}
    # new neurons enter at eps 0 unchanged; a split is the authors' whole split, theta +- u, which
    # moves the function by design (docs/methods/firefly.md), so only new neurons are applied here
    new = [c for c in cands if c.detail["kind"] == "new"]
    still = dataclasses.replace(firefly, options={**firefly.options, "eps": 0.0})
    with torch.no_grad():
        before = net.model(x)
        grown = apply_chosen(net, [(still, new)]).net
        torch.testing.assert_close(grown.model(x), before, rtol=0, atol=1e-12)
    assert grown.graph["m.h"]["args"]["out"] > 6
