"""`py` export: a run's final architecture as one standalone Python file (`model.py`).

The file defines a plain `nn.Module` class named for the model, whose layers are attributes with
readable names (a node's label, else its op and position: `hidden1`, `conv_2_0_1`) and whose
`forward` is the graph's data flow written out line by line, a comment at each branch; and a
function `load(run_dir)` that builds the class and loads the run's `model.pt` (with
`weights_only=True`), mapping each node id's weights onto its attribute. It imports torch only,
never growdsl, so the file can be copied anywhere torch is installed.

Exactness: every layer is constructed from the compiled module of the same node (same class,
sizes and settings: `nn.Linear`, `nn.Conv2d`, ...; growdsl's own `SepConv`, `RBF` and
`ChannelSlice` are copied into the file verbatim), and the forward applies them in the order and
with the merges (`a + b + c`, the sum over the path count, `torch.cat(..., dim=1)`) of growdsl's
containers (growdsl/compile/containers.py), so in eval mode it computes bit for bit what
`growdsl.load_run(DIR).model` computes (tested with `torch.equal`). A plugin's op
(docs/plugins.md) has no code growdsl could copy, so a net holding one cannot be exported as `py`.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from growdsl.errors import RunError
from growdsl.ir.graph import ArchGraph
from growdsl.ir.ops import OPS
from growdsl.ir.shapes import infer_shapes

if TYPE_CHECKING:
    from torch import nn

HEADER = '''"""{name}: the architecture growdsl grew, as a plain PyTorch module.

Written by `growdsl export RUN_DIR --format py`; it needs torch only. Load the trained weights with

    model = load("RUN_DIR")  # the run folder holding model.pt
    logits = model(x)        # x: a batch of shape [N, {shape}]

`load` returns the module in eval mode, on the CPU.
"""

from pathlib import Path

import torch
from torch import nn
'''

LOAD = '''
# the run's model.pt keys its weights by growdsl's node ids; each layer here is one node
NODES = {nodes}


def run_key(key: str) -> str:
    """The model.pt key of this module's state-dict key: the layer's node id, then the rest."""
    layer, _, rest = key.partition(".")
    return f"{{NODES[layer]}}.{{rest}}"


def load(run_dir: str | Path) -> {cls}:
    """{cls} with the trained weights of `run_dir/model.pt`, in eval mode."""
    state = torch.load(Path(run_dir) / "model.pt", weights_only=True, map_location="cpu")
    model = {cls}()
    model.load_state_dict({{key: state[run_key(key)] for key in model.state_dict()}})
    return model.eval()
'''


def python_source(graph: ArchGraph, model: nn.Module) -> str:
    """The standalone module file of `graph` with `model`'s layers (see the module docstring)."""
    names = _attribute_names(graph)
    cls = _class_name(graph.root)
    layers, copied = [], []
    for node in graph.ops():
        module = model.module_at(node)
        code, source = _constructor(graph, node, module)
        layers.append(f"        self.{names[node]} = {code}")
        if source is not None and source not in copied:
            copied.append(source)
    body: list[str] = []
    _emit(graph, graph.root, "x", "x", names, body)
    shape = ", ".join(map(str, graph.input_shape))
    out = ", ".join(map(str, infer_shapes(graph)[graph.root].out))
    lines = [HEADER.format(name=graph.root, shape=shape)]
    lines += [f"\n{source}" for source in copied]
    lines += [
        f"\nclass {cls}(nn.Module):",
        f'    """The model `{graph.root}`: input [N, {shape}] -> output [N, {out}]."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *layers,
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        *body,
        "        return x",
    ]
    nodes = "{\n" + "".join(f'    "{names[n]}": "{n}",\n' for n in graph.ops()) + "}"
    lines.append("\n" + LOAD.format(nodes=nodes, cls=cls))
    return "\n".join(lines)


# ---------------------------------------------------------------- names


def _class_name(root: str) -> str:
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", root) if part)
    return name if name and name[0].isalpha() else f"Model{name}"


def _attribute_names(graph: ArchGraph) -> dict[str, str]:
    """A readable, unique Python name per op node: its id after the root, `.` as `_`, led by the
    op's name when it would start with a digit (`mlp.hidden1` -> `hidden1`, `net.2.0` ->
    `conv_2_0`)."""
    taken = set(dir(_module_base()))
    names = {}
    for node in graph.ops():
        base = node[len(graph.root) + 1 :].replace(".", "_")
        if not base or base[0].isdigit():
            base = f"{graph[node]['op']}_{base}".rstrip("_")
        name, n = base, 1
        while name in taken or keyword.iskeyword(name):
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names[node] = name
    return names


def _module_base() -> type:
    from torch import nn

    return nn.Module


# ---------------------------------------------------------------- layers


def _constructor(graph: ArchGraph, node: str, module: Any) -> tuple[str, str | None]:
    """The code that builds `module` (the compiled layer of op `node`), and the source of a class
    of growdsl's that code needs copied into the file (None for torch's own)."""
    from torch import nn

    from growdsl.compile import ops as compiled

    plain = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Flatten, nn.Identity)  # no arguments
    if OPS[graph[node]["op"]].plugin is not None:
        raise RunError(
            f"{node} is the op '{graph[node]['op']}' of plugin {OPS[graph[node]['op']].plugin}, whose "
            "code a standalone file cannot hold: export pt2 or onnx instead"
        )
    builders: dict[type, Callable[[Any], str]] = {
        nn.Linear: lambda m: f"nn.Linear({m.in_features}, {m.out_features}{_bias(m)})",
        nn.Conv2d: lambda m: (
            f"nn.Conv2d({m.in_channels}, {m.out_channels}, {_compact(m.kernel_size)}, "
            f"stride={_compact(m.stride)}, padding={_compact(m.padding)}, groups={m.groups}{_bias(m)})"
        ),
        nn.BatchNorm1d: lambda m: f"nn.BatchNorm1d({m.num_features}, eps={m.eps}, momentum={m.momentum})",
        nn.BatchNorm2d: lambda m: f"nn.BatchNorm2d({m.num_features}, eps={m.eps}, momentum={m.momentum})",
        nn.MaxPool2d: lambda m: f"nn.MaxPool2d({m.kernel_size}, stride={m.stride}, padding={m.padding})",
        nn.AvgPool2d: lambda m: f"nn.AvgPool2d({m.kernel_size}, stride={m.stride}, padding={m.padding})",
        nn.AdaptiveAvgPool2d: lambda m: f"nn.AdaptiveAvgPool2d({m.output_size})",
        nn.Dropout: lambda m: f"nn.Dropout({m.p})",
        compiled.SepConv: lambda m: (
            f"SepConv({m.depthwise.in_channels}, {m.pointwise.out_channels}, "
            f"{m.depthwise.kernel_size[0]}, {m.depthwise.stride[0]})"
        ),
        compiled.ChannelSlice: lambda m: f"ChannelSlice({m.start}, {m.end})",
        **{cls: (lambda m: f"nn.{type(m).__name__}()") for cls in plain},
        compiled.RBF: lambda m: "RBF()",
    }
    build = builders.get(type(module))
    if build is None:
        raise RunError(f"{node}: no standalone code for a {type(module).__name__} layer")
    ours = type(module).__module__ == compiled.__name__
    return build(module), inspect.getsource(type(module)).rstrip() + "\n" if ours else None


def _bias(layer: Any) -> str:
    """`, bias=False` for a layer without one (torch's default is a bias)."""
    return "" if layer.bias is not None else ", bias=False"


def _compact(value: Any) -> Any:
    """A conv's or pool's `(3, 3)` as `3`, which torch reads the same."""
    if isinstance(value, tuple) and len(set(value)) == 1:
        return value[0]
    return value


# ---------------------------------------------------------------- forward


def _emit(graph: ArchGraph, node: str, src: str, dst: str, names: dict[str, str], out: list[str]) -> None:
    """Lines computing `dst` from `src` through `node`'s subtree, as growdsl's containers do."""
    kind = graph.kind(node)
    kids = graph.live_children(node)
    if kind == "op":
        out.append(f"        {dst} = self.{names[node]}({src})")
    elif kind == "branch" and kids:
        merge = graph[node]["merge"]
        label = f" ({graph[node]['label']})" if graph[node].get("label") else ""
        out.append(f"        # branch {merge} at {node}{label}: {len(kids)} paths")
        paths = [f"{dst}_{k}" for k in range(len(kids))]
        for path, var in zip(kids, paths, strict=True):
            _emit(graph, path, src, var, names, out)
        if merge == "concat":
            out.append(f"        {dst} = torch.cat([{', '.join(paths)}], dim=1)")
        elif merge == "mean":
            out.append(f"        {dst} = ({' + '.join(paths)}) / {len(paths)}")
        else:
            out.append(f"        {dst} = {' + '.join(paths)}")
    elif kids:  # a seq, or a choice (its chosen path)
        _emit(graph, kids[0], src, dst, names, out)
        for kid in kids[1:]:
            _emit(graph, kid, dst, dst, names, out)
    elif dst != src:  # an empty seq: the identity
        out.append(f"        {dst} = {src}")
