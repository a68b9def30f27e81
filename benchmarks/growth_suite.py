"""The growth benchmark suite (issue #11): does growth pay off at equal params, under the papers'
protocol (grow at convergence, fresh optimizer, restarted schedule)?

Every arm is a whole `growdsl run` of a spec (written to a temp dir, run through `growdsl.api`);
the synthetic teachers are generated here and read through `data csv(...)`. Seeds run in a pool
of 2 processes with one torch thread each, so the tables reproduce exactly on a rerun.

- T1, the splitting paper's 1-D toy: an RBF student (`linear(3..10) rbf linear(1, bias: false)`,
  i.e. input [x, 1]) fits an RBF teacher of 3 narrow units, full batch to convergence; one
  neuron per step at a plateau of the training loss. Arms: exact, fast and random splitting,
  new random neurons, firefly, and scratch nets of every size 3..10 trained for the whole run's
  epochs. Reports the share of scratch students at the teacher's size left stuck (training MSE
  above 10 % of the targets' variance) before anything else.
- T2: spirals (2 turns, noise 0.2) and a teacher–student task (Gaussian inputs labelled by a
  random tanh MLP) with tanh MLPs growing from 4-4 towards 24-24 (`frac: 0.5` a step), plus the
  fast-split run's final net from scratch and uniform-width nets at 4..24 from scratch.
- T3: firefly against splitting at equal `frac` (T1, T2, and a digits CNN); the kinds firefly
  chose are counted.
- The paired one-step test: from one converged 8-8 parent (same seed: same init and data order),
  one growth move of the same count, then the same fine-tuning.
- Pareto: test accuracy and training loss against params at every growth stage, and the
  training compute (forward FLOPs × samples, growth steps' own cost not included) to first reach
  a target accuracy. PNGs go to `--plots` (default docs/ for the full suite).

    python benchmarks/growth_suite.py [--quick] [--tasks rbf spirals teacher cnn one-step]
        [--methods NAME ...] [--plots DIR] [--workers 2] [--json FILE]

Grown arms are growth methods selected by name (`--methods`, suite_tasks.METHODS) through the
transform registry: a method whose transform is not registered is left out with a message.
Every final table has the arms' training compute (3 x forward FLOPs x samples, as
`growdsl payoff` counts it) beside their accuracy and params.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import suite_report as report
import suite_tasks as st
from suite_tasks import (
    CNN_METHODS,
    PROTOCOLS,
    T1_METHODS,
    T1_SIZES,
    T1_TEACHER_UNITS,
    T1_WHEN,
    T2_METHODS,
    T2_WIDTHS,
)

from growdsl import strict_json

DOCS = Path(__file__).parents[1] / "docs"
MLP = "linear({w}) as h1 tanh linear({w}) as h2 tanh linear(classes)"
TRAIN = "epochs {e} batch 64 {o} seed {s}"


@dataclass(frozen=True)
class Scale:
    """How big a run of the suite is: seeds and epochs per part."""

    t1_seeds: int
    t2_seeds: int
    one_step_seeds: int
    t1_epochs: int
    spirals_epochs: int
    teacher_epochs: int
    cnn_epochs: int
    parent_epochs: int
    finetune_epochs: int

    def epochs(self, task: str) -> int:
        return getattr(self, f"{task}_epochs")


# The teacher task and the CNN run long enough for 3 steps at convergence and a fine-tuning
# (their steps came at epochs 19-29, 38-51 and 63-69 in the check of suite_tasks.PROTOCOLS).
# 10 seeds everywhere: several of the T2 and T3 conclusions rest on a t below 3 (issue #20).
FULL = Scale(
    10, 10, 10, 300, spirals_epochs=30, teacher_epochs=90, cnn_epochs=80, parent_epochs=16, finetune_epochs=8
)
QUICK = Scale(
    2, 2, 2, 150, spirals_epochs=12, teacher_epochs=45, cnn_epochs=40, parent_epochs=6, finetune_epochs=3
)
TASKS = ("rbf", "spirals", "teacher", "cnn", "one-step")


@dataclass(frozen=True)
class Job:
    """One run: its key in the results (part, task, arm, seed, ...), its seed and spec text."""

    key: tuple
    seed: int
    text: str


# ---------------------------------------------------------------------------------------------
# Running (in the worker processes).


def register_benchmark_transforms() -> None:
    """Register the benchmark's own transform: `randomgrow`, the random-growth arm of the firefly
    benchmark."""
    from firefly_quality import RandomGrowth

    from growdsl import api  # noqa: F401 - imports growdsl.run before growdsl.grow (an import cycle)
    from growdsl.grow import registry

    registry.KNOWN_TRANSFORMS["randomgrow"] = "random growth (benchmark)"
    registry.register_transform("randomgrow", RandomGrowth.from_call)


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    register_benchmark_transforms()


def runnable(methods: list[str]) -> list[str]:
    """The methods whose transform this checkout registers, in order; the others are named on
    stderr and left out (a method another branch adds runs once it is merged)."""
    from growdsl.grow import registry

    register_benchmark_transforms()
    missing = [m for m in methods if registry.transform_factory(st.METHODS[m][0]) is None]
    if missing:
        print(f"left out, their transforms are not registered here: {', '.join(missing)}", file=sys.stderr)
    return [m for m in methods if m not in missing]


def run_job(job: Job) -> dict[str, Any]:
    """Run one spec as `growdsl run` does; return its epoch and growth records, final metrics,
    final.grow and the rows an epoch trains on (for FLOPs × samples)."""
    from growdsl import api
    from growdsl.run import datasets

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.grow"
        path.write_text(job.text)
        spec = api.load(path)
        result = api.run_spec(spec, Path(tmp) / "run", quiet=True, force=True)
        return {
            "key": job.key,
            "epochs": [r for r in result.history if r["event"] == "epoch"],
            "grows": [r for r in result.history if r["event"] == "grow"],
            "final": result.final_metrics,
            "final_grow": (result.dir / "final.grow").read_text(),
            "rows": len(datasets.load_data(spec.data, job.seed).train[0]),
            "spec_text": job.text,
        }


def run_all(jobs: list[Job], workers: int) -> dict[tuple, dict]:
    """Every job in a pool of `workers` processes, one torch thread each; results by key."""
    results: dict[tuple, dict] = {}
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_worker_init) as pool:
        for i, res in enumerate(pool.imap(run_job, jobs, chunksize=1), 1):
            results[res["key"]] = res
            print(
                f"  [{i}/{len(jobs)} {time.perf_counter() - start:.0f} s] {res['key']}: "
                f"params {res['final']['params']}, {len(res['grows'])} grow lines",
                file=sys.stderr,
                flush=True,
            )
    return results


# ---------------------------------------------------------------------------------------------
# The jobs of each part.

RBF_MODEL = "linear({w}) as hidden rbf linear(1, bias: false)"
CNN_MODEL = "conv({w}) as c1 bn relu conv({w}) as c2 bn relu gap flatten linear(classes)"


@dataclass(frozen=True)
class Data:
    """The data calls of the tasks, and the RBF targets' variance (the stuck threshold's unit)."""

    rbf: str
    teacher: str
    rbf_variance: float
    spirals: str = "spirals(n: 2000, noise: 0.2, turns: 2)"
    digits: str = "digits(test: 0.2)"


def make_data(root: Path) -> Data:
    """The two synthetic teachers' tables, written once: every arm and seed reads the same rows."""
    teacher = st.RBFTeacher.make(T1_TEACHER_UNITS, seed=0, width=st.T1_TEACHER_WIDTH)
    x, y = teacher.sample(500, seed=1)
    rbf = st.write_csv(root / "rbf_teacher.csv", x, y, "y")
    x, labels = st.mlp_teacher(3000, dim=8, hidden=(32, 32), classes=4, seed=2)
    mlp = st.write_csv(root / "mlp_teacher.csv", x, labels, "label")
    return Data(
        rbf=f'csv(path: "{rbf}", target: "y", regression: true, normalize: false)',
        teacher=f'csv(path: "{mlp}", target: "label")',
        rbf_variance=float(y.var()),
    )


def _grow(when: str, arm: str, amount: str) -> str:
    return f"{when} {st.AFTER_GROWTH} {st.method_call(arm, amount)}"


def t1_jobs(scale: Scale, data: Data, methods: list[str]) -> list[Job]:
    jobs = []
    for s in range(scale.t1_seeds):
        # full batch (500 rows > the training split) at a high lr: the loss levels off within the run
        train = f"epochs {scale.t1_epochs} batch 500 loss mse optimizer adam(lr: 0.1) seed {s}"
        for arm in methods:
            grow = _grow(T1_WHEN, arm, "count: 1")
            model = RBF_MODEL.format(w=f"{T1_SIZES[0]}..{T1_SIZES[-1]}")
            jobs.append(Job(("T1", "rbf", arm, s), s, st.spec_text(data.rbf, model, train, grow)))
        for w in T1_SIZES:
            text = st.spec_text(data.rbf, RBF_MODEL.format(w=w), train)
            jobs.append(Job(("T1", "rbf", "scratch", s, w), s, text))
    return jobs


def t2_jobs(scale: Scale, data: Data, methods: list[str]) -> list[Job]:
    jobs = []
    for task, call in (("spirals", data.spirals), ("teacher", data.teacher)):
        for s in range(scale.t2_seeds):
            train = TRAIN.format(e=scale.epochs(task), o=PROTOCOLS[task].optimizer, s=s)
            for arm in methods:
                grow = _grow(PROTOCOLS[task].when, arm, "frac: 0.5")
                text = st.spec_text(call, MLP.format(w=f"{T2_WIDTHS[0]}..{T2_WIDTHS[-1]}"), train, grow)
                jobs.append(Job(("T2", task, arm, s), s, text))
            for w in T2_WIDTHS:
                jobs.append(Job(("T2", task, "scratch", s, w), s, st.spec_text(call, MLP.format(w=w), train)))
    return jobs


def cnn_jobs(scale: Scale, data: Data, methods: list[str]) -> list[Job]:
    jobs = []
    for s in range(scale.t2_seeds):
        train = TRAIN.format(e=scale.cnn_epochs, o=PROTOCOLS["cnn"].optimizer, s=s)
        for arm in methods:
            grow = _grow(PROTOCOLS["cnn"].when, arm, "frac: 0.5")
            jobs.append(
                Job(
                    ("T3", "cnn", arm, s),
                    s,
                    st.spec_text(data.digits, CNN_MODEL.format(w="4..16"), train, grow),
                )
            )
    return jobs


ONE_STEP_COUNT = 4


def one_step_jobs(scale: Scale, data: Data) -> list[Job]:
    """Same seed: the same parent (init and data order) trained until its training loss plateaus
    (within `parent_epochs` + `finetune_epochs`); then each move once and the same training to the
    last epoch (a fresh optimizer after a move; "nothing" keeps its optimizer)."""
    jobs = []
    epochs = scale.parent_epochs + scale.finetune_epochs
    for task, call in (("spirals", data.spirals), ("teacher", data.teacher)):
        for s in range(scale.one_step_seeds):
            train = TRAIN.format(e=epochs, o=st.ONE_STEP_OPTIMIZER, s=s)
            for arm, move in st.ONE_STEP_ARMS.items():
                grow = (
                    move
                    and f"at epochs [{scale.parent_epochs}] {st.AFTER_GROWTH} {move.format(k=ONE_STEP_COUNT)}"
                )
                text = st.spec_text(call, MLP.format(w="8..16"), train, grow)
                jobs.append(Job(("one-step", task, arm, s), s, text))
    return jobs


def second_phase_jobs(results: dict[tuple, dict]) -> list[Job]:
    """What needs the first phase's nets: the fast-split run's final net from scratch (its
    final.grow: same data, training, seed), and a uniform-width net at each grown net's params
    where the grid of widths lacks one."""
    jobs = []
    for key, res in results.items():
        if key[0] != "T2" or key[2] == "scratch":
            continue
        _, task, arm, seed = key
        if arm == "split fast":
            jobs.append(
                Job(("T2", task, "split fast, final net from scratch", seed), seed, res["final_grow"])
            )
        w = st.width_for_params(res["epochs"][-1]["params"], st.uniform_mlp_params(task))
        uniform = ("T2", task, "scratch", seed, w)
        if uniform not in results and uniform not in {j.key for j in jobs}:
            text = results[("T2", task, "scratch", seed, T2_WIDTHS[0])]["spec_text"]
            jobs.append(Job(uniform, seed, text.replace(MLP.format(w=T2_WIDTHS[0]), MLP.format(w=w))))
    return jobs


# ---------------------------------------------------------------------------------------------


def _selected(job: Job, tasks: set[str]) -> bool:
    return (job.key[0] if job.key[0] == "one-step" else job.key[1]) in tasks


def print_tables(results: dict[tuple, dict], tasks: set[str], rbf_variance: float, plots: Path) -> None:
    """Every table of the selected tasks (markdown, to stdout) and their Pareto plots."""
    if "rbf" in tasks:
        print(
            "### T1: is the scratch student stuck at the teacher's size?\n\n"
            + report.stuck_table(results, rbf_variance)
        )
        print("\n### T1: final nets\n\n" + report.final_table(results, "T1", ["rbf"], regression=True))
        print("\n### T1: test MSE at every size\n\n" + report.by_size_table(results))
    t2 = [task for task in ("spirals", "teacher") if task in tasks]
    if t2:
        print("\n### T2: final nets\n\n" + report.final_table(results, "T2", t2, regression=False))
    for task in t2:
        print(f"\n### T2, {task}: growth steps\n\n" + report.steps_table(results, "T2", task))
        print(f"\n### T2, {task}: at equal params\n\n" + report.equal_params_table(results, task))
        target, table = report.compute_table(results, task)
        print(f"\n### T2, {task}: compute to reach test accuracy {target:.4f}\n\n" + table)
    if "cnn" in tasks:
        print("\n### T3: digits CNN\n\n" + report.final_table(results, "T3", ["cnn"], regression=False))
        print("\n### T3, cnn: growth steps\n\n" + report.steps_table(results, "T3", "cnn"))
    print("\n### T3: what firefly chose (summed over seeds)\n\n" + report.kinds_table(results))
    if "one-step" in tasks:
        print("\n### The paired one-step test\n\n" + report.one_step_table(results))
    for part, task, regression in (("T1", "rbf", True), ("T2", "spirals", False), ("T2", "teacher", False)):
        if task in tasks:
            path = report.pareto_plot(results, part, task, regression, plots / f"growth_suite_{task}.png")
            print(f"\nplot: {path}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds and short runs: a few minutes")
    parser.add_argument(
        "--tasks", nargs="+", choices=TASKS, default=TASKS, help="run only these parts (default: all)"
    )
    parser.add_argument(
        "--plots", type=Path, help="folder for the PNGs (default: docs/, or the temp dir with --quick)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=st.METHODS,
        help="the grown arms of T1, T2 and T3 (default: each part's own list, suite_tasks.py)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write every run's records here (strict JSON)")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    tasks = set(args.tasks)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp))
        plots = args.plots or (Path(tmp) if args.quick else DOCS)
        # made before the runs: a folder missing at the end would lose minutes of results
        plots.mkdir(parents=True, exist_ok=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)

        def chosen(default: tuple[str, ...]) -> list[str]:
            return runnable(list(args.methods or default))

        jobs = (
            t1_jobs(scale, data, chosen(T1_METHODS))
            + t2_jobs(scale, data, chosen(T2_METHODS))
            + cnn_jobs(scale, data, chosen(CNN_METHODS))
            + one_step_jobs(scale, data)
        )
        results = run_all([j for j in jobs if _selected(j, tasks)], args.workers)
        results |= run_all(second_phase_jobs(results), args.workers)
        if args.json:
            rows = [
                {"key": list(key), **{k: v for k, v in res.items() if k != "key"}}
                for key, res in results.items()
            ]
            args.json.write_text(strict_json.dumps(rows))
        print(f"## Growth suite ({'--quick' if args.quick else 'full'}, {' '.join(args.tasks)}): {scale}\n")
        print_tables(results, tasks, data.rbf_variance, plots)
    print(
        f"\n{len(results)} runs, {args.workers} workers, {time.perf_counter() - start:.0f} s in all",
        flush=True,
    )


if __name__ == "__main__":
    main()
