"""Exports: a run's graph and weights as files (`final.grow`, node-link JSON, GraphML, DOT,
TorchScript, ONNX)."""

from growdsl.export.formats import FILE_NAMES, FORMATS, write_atomically, write_exports
from growdsl.export.spec import final_grow_text, final_spec, graph_to_model

__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "final_grow_text",
    "final_spec",
    "graph_to_model",
    "write_atomically",
    "write_exports",
]
