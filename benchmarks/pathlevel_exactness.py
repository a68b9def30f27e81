"""How much each path-level transform changes a network's function, over the shipped specs (#9).

For every spec in `specs/` that is not continual, the spec's model is built on its data (float32,
as runs train), its batch norms given running statistics by a few forward passes in training
mode, and put in eval mode. Then every site of every path-level transform (`pathlevel(...)` with
all four ops and all four replacements, shared cells changed at every use) is applied through the
carry with the transform's own init, and the change of the outputs, max |grown(x) - net(x)|, is
measured on a batch of training rows: once at zero noise and once at the default replication
noise (6e-3 · std(W); only replicate_add differs). The BN of a replaced identity edge takes its
statistics from the same batch (what a growth step does with its sample).

    python benchmarks/pathlevel_exactness.py [--specs specs/*.grow] [--rows 256] [--quick]

Prints one row per transform (split-concat of an identity or a pool, whose paths read halves of
the input, in rows of their own): the specs with a site for it, the sites, the largest change and
the largest change relative to the output's max |value|.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from growdsl import api
from growdsl.grow.net import Net
from growdsl.grow.pathlevel import PathLevelTransform
from growdsl.grow.pathlevel.inits import replaced_stats
from growdsl.grow.pathlevel.transform import Payload
from growdsl.grow.surgery import carry
from growdsl.grow.transform import Candidate
from growdsl.ir.edits import concat_split
from growdsl.lang import parse_value
from growdsl.run.datasets import load_data

ROOT = Path(__file__).parents[1]
ALL = (
    "pathlevel(ops: [replicate_add, split_concat, insert, replace], "
    "replace_with: [conv, sepconv, maxpool, avgpool]"
)


def transform(noise: float) -> PathLevelTransform:
    return PathLevelTransform.from_call(parse_value(f"{ALL}, noise: {noise})"))


def spec_net(path: Path, rows: int) -> tuple[Net, torch.Tensor] | None:
    """The spec's model with batch-norm statistics of its own, in eval mode, and a probe batch;
    None for a continual spec (pathlevel refuses those)."""
    spec = api.load(path)
    if spec.data is not None and any(k == "tasks" for k in getattr(spec.data, "keywords", {})):
        return None
    torch.manual_seed(0)
    graph = api.lower(spec)
    model = api.build_model(graph)
    x = load_data(spec.data, 0).train[0][:rows]
    model.train()
    with torch.no_grad():
        for start in range(0, len(x), 64):
            model(x[start : start + 64])
    model.eval()
    return Net(graph, model), x


def changes(net: Net, x: torch.Tensor, t: PathLevelTransform) -> list[tuple[str, float, float]]:
    """(transform, max |Δ|, max |Δ| / max |output|) for every site the transform has in `net`."""
    with torch.no_grad():
        before = net.model(x)
    scale = float(before.abs().max())
    out = []
    for op, node, edit in t.edits(net.graph):
        cand = Candidate("pathlevel", edit, 1.0, {}, Payload(0, replaced_stats(net, edit, x)))
        grown, _ = carry(net, edit, t.init([cand]), torch.Generator().manual_seed(0))
        with torch.no_grad():
            delta = float((grown.model(x) - before).abs().max())
        out.append((_kind(net, op, node), delta, delta / scale))
    return out


def _kind(net: Net, op: str, node: str) -> str:
    """The row a site counts in: split-concat of an identity, a pool or a grouped conv (the paths
    read halves of the input through a `slice`) apart from the split of a layer's outputs."""
    if op == "split_concat" and concat_split(net.graph, node, 2).inputs:
        return f"{op} (input: {net.graph[node]['op']})"
    return op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", nargs="+", type=Path, default=sorted((ROOT / "specs").glob("*.grow")))
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="one spec, 64 rows: a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    specs = [ROOT / "specs" / "pathlevel_cell.grow"] if args.quick else args.specs
    rows = 64 if args.quick else args.rows
    table: dict[tuple[str, str], list] = {}
    for path in specs:
        made = spec_net(path, rows)
        if made is None:
            print(f"{path.name}: continual, skipped")
            continue
        net, x = made
        for noise in (0.0, 6e-3):
            for op, delta, rel in changes(net, x, transform(noise)):
                if noise and op != "replicate_add":
                    continue  # noise touches only replication's copies
                row = table.setdefault((op, f"{noise:g}"), [set(), 0, 0.0, 0.0])
                row[0].add(path.name)
                row[1] += 1
                row[2], row[3] = max(row[2], delta), max(row[3], rel)
    print(f"torch {torch.__version__}, float32, eval mode, {rows} training rows per spec")
    print("| transform | noise | specs | sites | max abs change | max change / max abs output |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (op, noise), (names, sites, delta, rel) in sorted(table.items()):
        print(f"| {op} | {noise} | {len(names)} | {sites} | {delta:.2e} | {rel:.2e} |")


if __name__ == "__main__":
    main()
