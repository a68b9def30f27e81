"""How parse, lower and compile times grow with the size of a spec.

Each stage is timed on its own (best of `--repeats`) for generated models of 10 to 10,000 layers
(a layer is one op): a flat sequence of `linear(16) relu` pairs, and a nested variant whose pairs
sit in blocks of blocks (`{ { linear(16) relu } ... } ...`), which lowers to a deeper tree. The
claims under test: time per layer stays roughly flat (near-linear growth) and a 1,000-layer spec
goes from text to modules in under a second.

    python benchmarks/scale.py [--sizes 10 100 1000 10000] [--repeats 3] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from growdsl.compile import compile_graph
from growdsl.ir.lower import lower
from growdsl.lang import parse_text

INPUT = (16,)
CLASSES = 10
PAIR = "linear(16) relu"


def flat_spec(layers: int) -> str:
    return "model flat {\n" + "\n".join(f"    {PAIR}" for _ in range(layers // 2)) + "\n}\n"


def nested_spec(layers: int, fan: int = 10) -> str:
    """Pairs wrapped in blocks of `fan`, those in blocks of `fan`, ...: a tree about log_fan deep."""
    items = [PAIR] * (layers // 2)
    while len(items) > fan:
        items = ["{ " + " ".join(items[i : i + fan]) + " }" for i in range(0, len(items), fan)]
    return "model nested {\n" + "\n".join(f"    {item}" for item in items) + "\n}\n"


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(text: str, repeats: int) -> dict[str, float]:
    parse_s, spec = best_time(lambda: parse_text(text, "<scale>"), repeats)
    lower_s, graph = best_time(lambda: lower(spec, INPUT, CLASSES), repeats)
    compile_s, net = best_time(lambda: compile_graph(graph), repeats)
    assert net(torch.randn(2, *INPUT)).shape == (2, 16)  # the compiled net runs
    return {"nodes": graph.g.number_of_nodes(), "parse": parse_s, "lower": lower_s, "compile": compile_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()

    grammar_s, _ = best_time(lambda: parse_text(flat_spec(2), "<warm-up>"), 1)  # builds the LALR tables once
    rows = []
    for variant, make in (("flat", flat_spec), ("nested", nested_spec)):
        for layers in args.sizes:
            m = measure(make(layers), args.repeats)
            total = m["parse"] + m["lower"] + m["compile"]
            ms = [f"{m[stage] * 1e3:,.1f}" for stage in ("parse", "lower", "compile")]
            per_layer = f"{total / layers * 1e6:,.0f}"
            rows.append((variant, f"{layers:,}", f"{m['nodes']:,}", *ms, f"{total * 1e3:,.1f}", per_layer))

    where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"# {datetime.date.today()}  python {sys.version.split()[0]}  torch {torch.__version__}  {where}")
    print(f"# best of {args.repeats}; a layer is one op (`linear(16)` or `relu`); first parse, which")
    print(f"# builds the parser once per process, took {grammar_s * 1e3:.0f} ms and is not in the table")
    header = ("spec", "layers", "nodes", "parse ms", "lower ms", "compile ms", "total ms", "us/layer")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
