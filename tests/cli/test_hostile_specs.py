"""Hostile specs through `growdsl check`: sizes past any machine, numbers past floats, the file
system's root as a data set, deep nesting, bytes that are not text. Each ends in a clear message
with exit code 2 (or checks, where the spec is legal), never a traceback. The invalid corpus
(tests/corpus/invalid) pins the message and place of each ordinary mistake; this file pins that
the extreme ones are mistakes at all, and refused before anything is allocated or walked."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from growdsl.cli import main

MODEL = "model m {{ flatten {body} linear(classes) }}\n"
HOSTILE = {
    "281_trillion_parameters": MODEL.format(body="linear(16777216) relu linear(16777216) relu"),
    "width_past_int64": MODEL.format(body="linear(99999999999999999999) relu"),
    "width_past_float": MODEL.format(body="linear(1e309) relu"),
    "range_to_a_trillion": MODEL.format(body="linear(8..1000000000000) relu"),
    "repeat_a_million_times": MODEL.format(body="repeat 1000000 { linear(8) relu }"),
    "nested_500_deep": MODEL.format(body="repeat 1 { " * 500 + "linear(8)" + " }" * 500),
    "learning_rate_past_float": MODEL.format(body="") + "train { optimizer sgd(lr: 1e309) }\n",
    "learning_rate_an_int_past_float": MODEL.format(body="") + "train { optimizer sgd(lr: 1e3091G) }\n",
    "max_params_an_int_past_float": MODEL.format(body="") + "train { max_params -1e3091G }\n",
    "epochs_with_digits_in_suffix": MODEL.format(body="") + "train { epochs 1x0 }\n",
    "a_distribution_without_a_search": MODEL.format(body="") + "train { optimizer adam(lr: log(1e-4..1)) }\n",
    "file_system_root_as_images": 'data folder(root: "/")\n' + MODEL.format(body=""),
    "a_device_as_a_data_set": 'data csv(path: "/dev/zero")\n' + MODEL.format(body=""),
    "samples_past_int64": "data spirals(n: 99999999999999999999)\n" + MODEL.format(body=""),
}
BYTES = {
    "not_utf8": b"model m { \xff\xfe linear(classes) }\n",
    "nul_bytes": b"model m { linear(classes) }\x00\x00\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE) + sorted(BYTES))
def test_a_hostile_spec_is_refused_with_a_message_never_a_traceback(name, tmp_path):
    spec = tmp_path / f"{name}.grow"
    if name in BYTES:
        spec.write_bytes(BYTES[name])
    else:
        spec.write_text(HOSTILE[name])
    result = CliRunner().invoke(main, ["check", str(spec)])
    assert isinstance(result.exception, SystemExit | None), f"{name}: {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output
    assert result.exit_code == 2, f"{name}: exit {result.exit_code}: {result.output}"
