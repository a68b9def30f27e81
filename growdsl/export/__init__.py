"""Exports: a run's graph and weights as files (`final.grow`, node-link JSON, GraphML, DOT,
a `torch.export` program, ONNX)."""

from growdsl.export.formats import (
    FILE_NAMES,
    FORMATS,
    RETIRED,
    check_export,
    output_name,
    write_atomically,
    write_exports,
)
from growdsl.export.spec import final_grow_text, final_spec, graph_to_model

__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "RETIRED",
    "check_export",
    "final_grow_text",
    "final_spec",
    "graph_to_model",
    "output_name",
    "write_atomically",
    "write_exports",
]
