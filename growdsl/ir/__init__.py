"""ir: the `ArchGraph` and the graph functions over it (lowering, shapes, costs, data flow, sampling)."""

from growdsl.ir.cost import added_cost, costs, flops, param_count
from growdsl.ir.dataflow import (
    Consumer,
    DataFlow,
    Reach,
    consumers,
    is_transparent,
    next_op,
    prev_op,
    producers,
    reach,
)
from growdsl.ir.dot import to_dot
from growdsl.ir.edits import AppendCopy, Edit, Graft, Insert, Widen, Wrap, apply_edit, fold, room
from growdsl.ir.graph import ArchGraph, GraphFormatError, from_json, graph_difference, to_json
from growdsl.ir.lower import lower
from growdsl.ir.sample import fix_sizes, sample
from growdsl.ir.shapes import NodeShapes, infer_shapes

__all__ = [
    "ArchGraph",
    "GraphFormatError",
    "Consumer",
    "DataFlow",
    "Reach",
    "NodeShapes",
    "AppendCopy",
    "Edit",
    "Graft",
    "Insert",
    "Widen",
    "Wrap",
    "apply_edit",
    "fold",
    "room",
    "consumers",
    "added_cost",
    "costs",
    "fix_sizes",
    "flops",
    "from_json",
    "graph_difference",
    "infer_shapes",
    "is_transparent",
    "lower",
    "next_op",
    "param_count",
    "prev_op",
    "reach",
    "producers",
    "sample",
    "to_dot",
    "to_json",
]
