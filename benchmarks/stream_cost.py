"""A streamed image folder against the same folder in memory: throughput and peak memory.

A folder of PNGs is generated from growdsl's `patterns` images (`--n` images of `--size` pixels,
10 classes). Each configuration runs in a fresh process: the folder in memory (`stream: false`),
and streamed with 0 and with `--workers` decoding processes (`stream: true`); all with
`augment: [crop(pad: 4), flip]`, batch `--batch`, held out 10%. Measured per configuration:
the seconds to load (the in-memory set decodes every image then; a streamed one only lists its
files and reads its statistics sample), images per second over one epoch of training batches
(read, decoded, standardized, augmented: the data path alone, no net), and the rise of the main
process's peak resident memory (VmHWM, reset after the imports) over the load and the epoch. The
workers are forked copies of the main process; their own memory is not measured here. glibc's
malloc keeps freed blocks below its (adaptive) mmap threshold for reuse, which can make the peak
grow with the batches read: `--mmap-threshold 65536` runs the measured processes with
MALLOC_MMAP_THRESHOLD_=65536, so that every block of 64 KiB or more goes back at once and the
peak shows what is alive.

    python benchmarks/stream_cost.py [--n 5000] [--size 96] [--batch 128] [--workers 2]
                                     [--mmap-threshold BYTES] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

MEASURE = """
import json, sys, time
from pathlib import Path
import torch
from growdsl.lang import parse_text
from growdsl.run.batches import training_batches
from growdsl.run.datasets import load_data
from growdsl.run.loop import batches
import torchvision  # noqa: F401  (imported before the peak is reset, as growdsl would)


def kb(field):
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


data, batch = sys.argv[1], int(sys.argv[2])
call = parse_text("data " + data + "\\nmodel m { flatten linear(2) }\\n", "d.grow").data
Path("/proc/self/clear_refs").write_text("5")
start_rss = kb("VmRSS")
start = time.perf_counter()
splits = load_data(call, 0)
loaded = time.perf_counter()
gen = torch.Generator().manual_seed(0)
n = 0
order = batches(len(splits.train[0]), batch, gen, torch.device("cpu"))
for x, y in training_batches(splits.train, order, gen):
    n += len(y)
done = time.perf_counter()
print(json.dumps({"load_s": loaded - start, "images": n, "epoch_s": done - loaded,
                  "peak_mb": (kb("VmHWM") - start_rss) / 1024}))
"""


def make_folder(root: Path, n: int, size: int) -> None:
    """`n` PNGs of `patterns` images, size x size, in 10 class folders."""
    from PIL import Image

    from growdsl.run.synthetic import patterns

    x, y = patterns(n, [size, size], 3, 10, 0.25, 0)
    for c in range(10):
        (root / f"class{c}").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(x[i].permute(1, 2, 0).numpy()).save(root / f"class{int(y[i])}" / f"{i}.png")


def measure(data: str, batch: int, mmap_threshold: int | None) -> dict:
    env = dict(os.environ)
    if mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, data, str(batch)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        default=None,
        help="run the measured processes with MALLOC_MMAP_THRESHOLD_ set to this many bytes",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "folder"
        make_folder(root, args.n, args.size)
        options = (
            f'root: "{root}", size: [{args.size}, {args.size}], test: 0.1, augment: [crop(pad: 4), flip]'
        )
        configs = {
            "in memory": f"folder({options}, stream: false, workers: {args.workers})",
            "streamed, 0 workers": f"folder({options}, stream: true, workers: 0)",
            f"streamed, {args.workers} workers": f"folder({options}, stream: true, workers: {args.workers})",
        }
        results = {name: measure(data, args.batch, args.mmap_threshold) for name, data in configs.items()}
    resident = args.n * 3 * args.size * args.size / 2**20
    lines = [
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, {os.cpu_count()} cores, "
        f"{args.n} PNGs of {args.size}x{args.size} ({resident:.1f} MiB as uint8), batch {args.batch}"
        + (f", MALLOC_MMAP_THRESHOLD_={args.mmap_threshold}" if args.mmap_threshold is not None else ""),
        "",
        "| | load (s) | epoch (s) | images/s | peak memory rise (MiB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['load_s']:.2f} | {r['epoch_s']:.2f} | {r['images'] / r['epoch_s']:,.0f} "
            f"| {r['peak_mb']:.1f} |"
        )
    print("\n".join(lines) if args.markdown else "\n".join(line.replace("|", " ") for line in lines))


if __name__ == "__main__":
    main()
