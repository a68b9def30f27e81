"""`sample`, `fix_sizes` and the JSON round trip."""

from __future__ import annotations

import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growdsl.ir import fix_sizes, from_json, infer_shapes, sample, to_json

SPACE = (
    "model net { conv({8, 16, 32}, k: {3, 5}) as stem maxpool({2, 3}) "
    "choice { conv(8) | sepconv(8, k: {3, 5, 7}) | identity } as cell "
    "repeat 1..3 { choice { conv(8..16) | identity } } gap flatten linear(classes) }"
)


def _fingerprint(graph) -> str:
    return json.dumps(to_json(graph), sort_keys=True)


def test_same_seed_gives_the_same_architecture(lower_text):
    space = lower_text(SPACE)
    assert _fingerprint(sample(space, random.Random(7))) == _fingerprint(sample(space, random.Random(7)))


def test_sample_resolves_every_choice_and_set_and_leaves_the_space_alone(lower_text):
    space = lower_text(SPACE)
    before = _fingerprint(space)
    drawn = [sample(space, random.Random(seed)) for seed in range(20)]
    assert _fingerprint(space) == before
    for arch in drawn:
        assert all(arch[n]["chosen"] is not None for n in arch.g if arch.kind(n) == "choice")
        stem = arch["net.stem"]["args"]
        assert stem["out"] in (8, 16, 32) and stem["padding"] == stem["k"] // 2
        assert arch["net.1"]["args"]["stride"] == arch["net.1"]["args"]["k"]
        assert arch["net.3.0.0"]["args"]["out"] == 8  # ranges stay at their low end
    assert len({_fingerprint(a) for a in drawn}) > 1


def test_sampled_architectures_have_consistent_shapes(lower_text):
    space = lower_text(SPACE, input_shape=(3, 16, 16))
    for seed in range(10):
        assert infer_shapes(sample(space, random.Random(seed)))["net"].out == (10,)


def test_fix_sizes_drops_ranges_sets_and_templates_but_keeps_sizes(lower_text):
    space = lower_text(SPACE)
    fixed = fix_sizes(space)
    for node in fixed.g:
        assert not {"width", "depth", "template", "options", "auto"} & set(fixed[node])
    assert fixed["net.stem"]["args"] == space["net.stem"]["args"]
    assert fixed.children("net.3") == space.children("net.3")
    assert "width" in space["net.3.0.0"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_json_round_trip_is_exact(lower_text, seed):
    graph = sample(lower_text(SPACE), random.Random(seed))
    data = json.loads(json.dumps(to_json(graph)))
    back = from_json(data)
    assert to_json(back) == data
    assert dict(back.g.nodes(data=True)) == dict(graph.g.nodes(data=True))
    assert str(back) == str(graph)
