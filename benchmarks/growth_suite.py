"""The growth benchmark suite (issues #11, #20): does growth pay off at equal FLOPs, under the
papers' protocol (grow at convergence, fresh optimizer, restarted schedule)?

Every arm is a whole `growdsl run` of a spec (written to a temp dir, run through `growdsl.api`);
the synthetic teachers are generated here and read through `data csv(...)`. Seeds run in a pool
of 2 processes with one torch thread each, so a rerun on the same machine reproduces the tables
exactly.

Every method (`--methods`, default all of suite_tasks.METHODS: exact, fast, signed and random
splitting, new random neurons, firefly, GradMax, TINY, Net2Net's widening) grows on every task
under one protocol (grow at a plateau of the training loss, fresh optimizer, restarted schedule),
and each grown net is paired by seed with (a) the uniform-width net of the nearest forward FLOPs
and (b) its own final architecture, both trained from scratch for the same epochs. A method that
refuses a task's model (GradMax and TINY grow linear layers only, into σ(0) = 0 activations) is
a row with its reason.

- T1, the splitting paper's 1-D toy: an RBF student (`linear(3..10) rbf linear(1, bias: false)`,
  i.e. input [x, 1]) fits an RBF teacher of 3 narrow units, full batch to convergence; one
  neuron per step at a plateau of the training loss; scratch nets of every size 3..10. Reports
  the share of nets left stuck (training MSE above 10 % of the targets' variance).
- T2: spirals (2 turns, noise 0.2) and a teacher–student task (Gaussian inputs labelled by a
  random tanh MLP) with tanh MLPs growing from 4-4 towards 24-24 (`frac: 0.5` a step), uniform
  widths 4..24 from scratch.
- T3: a digits CNN (`conv(4..16) bn relu conv(4..16) bn relu gap`), uniform widths 4..16 from
  scratch; the kinds firefly chose are counted on every task.
- The paired one-step test: from one converged 8-8 parent (same seed: same init and data order),
  one growth move of the same count, then the same fine-tuning.
- Pareto: test accuracy and training loss against params at every growth stage, and the
  training compute (forward FLOPs × samples, growth steps' own cost not included) to first reach
  a target accuracy. PNGs go to `--plots` (default docs/ for the full suite).

    python benchmarks/growth_suite.py [--quick] [--tasks rbf spirals teacher cnn one-step]
        [--methods NAME ...] [--plots DIR] [--workers 2] [--json FILE]
    python benchmarks/growth_suite.py --from-json FILE [--tasks ...]   # the tables of a recorded run

Every table has the arms' training compute (3 x forward FLOPs x samples, as `growdsl payoff`
counts it); the one-protocol tables give 95 % intervals and t of the paired differences, and the
output names the machine (runs are deterministic on one machine; CPU kernels differ between
machines, so a rerun elsewhere reproduces within the intervals, not digit for digit).
"""

from __future__ import annotations

import argparse
import functools
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
    CNN_WIDTHS,
    PROTOCOLS,
    T1_SIZES,
    T1_TEACHER_UNITS,
    T1_WHEN,
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


def _worker_init(threads: int = 1) -> None:
    """A worker's torch threads (1 by default: each run's reductions then happen in one order, so
    a rerun on this machine is digit for digit the same) and the benchmark's own transform."""
    import torch

    torch.set_num_threads(threads)
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
    from growdsl.errors import GrowDSLError
    from growdsl.run import datasets

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.grow"
        path.write_text(job.text)
        spec = api.load(path)
        try:
            result = api.run_spec(spec, Path(tmp) / "run", quiet=True, force=True)
        except GrowDSLError as error:  # a method refusing the task's model: a row of the tables
            return {
                "key": job.key,
                "error": str(error).replace(str(path), "spec.grow"),
                "spec_text": job.text,
            }
        return {
            "key": job.key,
            "epochs": [r for r in result.history if r["event"] == "epoch"],
            "grows": [r for r in result.history if r["event"] == "grow"],
            "final": result.final_metrics,
            "final_grow": (result.dir / "final.grow").read_text(),
            "rows": len(datasets.load_data(spec.data, job.seed).train[0]),
            "spec_text": job.text,
        }


def run_all(jobs: list[Job], workers: int, threads: int = 1) -> dict[tuple, dict]:
    """Every job in a pool of `workers` processes, `threads` torch threads each; results by key."""
    results: dict[tuple, dict] = {}
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_worker_init, initargs=(threads,)) as pool:
        for i, res in enumerate(pool.imap(run_job, jobs, chunksize=1), 1):
            results[res["key"]] = res
            done = (
                f"error: {res['error']}"
                if "error" in res
                else f"params {res['final']['params']}, {len(res['grows'])} grow lines"
            )
            print(
                f"  [{i}/{len(jobs)} {time.perf_counter() - start:.0f} s] {res['key']}: {done}",
                file=sys.stderr,
                flush=True,
            )
    return results


# ---------------------------------------------------------------------------------------------
# The jobs of each part.

RBF_MODEL = "linear({w}) as hidden rbf linear(1, bias: false)"
CNN_MODEL = "conv({w}) as c1 bn relu conv({w}) as c2 bn relu gap flatten linear(classes)"
PART = {"rbf": "T1", "spirals": "T2", "teacher": "T2", "cnn": "T3"}
MODEL = {"rbf": RBF_MODEL, "spirals": MLP, "teacher": MLP, "cnn": CNN_MODEL}
GRID = {"rbf": T1_SIZES, "spirals": T2_WIDTHS, "teacher": T2_WIDTHS, "cnn": CNN_WIDTHS}


@dataclass(frozen=True)
class Data:
    """The data calls of the tasks, and the RBF targets' variance (the stuck threshold's unit)."""

    rbf: str
    teacher: str
    rbf_variance: float
    spirals: str = "spirals(n: 2000, noise: 0.2, turns: 2)"
    cnn: str = "digits(test: 0.2)"


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


@dataclass(frozen=True)
class Suite:
    """The spec text of every arm of the T1-T3 tasks under one protocol: the same data, training
    and seed for a grown arm, the scratch nets of its task's grid, its final net from scratch and
    its FLOP-matched uniform net."""

    scale: Scale
    data: Data

    def seeds(self, task: str) -> range:
        return range(self.scale.t1_seeds if task == "rbf" else self.scale.t2_seeds)

    def train(self, task: str, seed: int) -> str:
        if task == "rbf":  # full batch (500 rows > the training split) at a high lr: the loss levels off
            return f"epochs {self.scale.t1_epochs} batch 500 loss mse optimizer adam(lr: 0.1) seed {seed}"
        return TRAIN.format(e=self.scale.epochs(task), o=PROTOCOLS[task].optimizer, s=seed)

    def grown(self, task: str, arm: str, seed: int) -> Job:
        grid = GRID[task]
        when, amount = (T1_WHEN, "count: 1") if task == "rbf" else (PROTOCOLS[task].when, "frac: 0.5")
        grow = f"{when} {st.AFTER_GROWTH} {st.method_call(arm, amount)}"
        model = MODEL[task].format(w=f"{grid[0]}..{grid[-1]}")
        text = st.spec_text(getattr(self.data, task), model, self.train(task, seed), grow)
        return Job((PART[task], task, arm, seed), seed, text)

    def scratch(self, task: str, seed: int, width: int) -> Job:
        text = st.spec_text(getattr(self.data, task), MODEL[task].format(w=width), self.train(task, seed))
        return Job((PART[task], task, "scratch", seed, width), seed, text)

    def first_phase(self, tasks: list[str], methods: list[str]) -> list[Job]:
        """Every method and every width of the grid, for each seed of each task."""
        jobs = []
        for task in tasks:
            for s in self.seeds(task):
                jobs += [self.grown(task, arm, s) for arm in methods]
                jobs += [self.scratch(task, s, w) for w in GRID[task]]
        return jobs

    def second_phase(self, results: dict[tuple, dict]) -> list[Job]:
        """What needs the grown nets: each one's final net from scratch (its final.grow: same data,
        training, seed), and the uniform-width net of the nearest forward FLOPs where the grid
        lacks it. The matched width is written into the grown run's result (`matched_width`)."""
        jobs, keys = [], set(results)
        for key, res in list(results.items()):
            if key[0] not in ("T1", "T2", "T3") or len(key) != 4 or "error" in res:
                continue
            part, task, arm, seed = key
            jobs.append(Job((part, task, f"{arm}, final net from scratch", seed), seed, res["final_grow"]))
            res["matched_width"] = st.width_for_params(res["epochs"][-1]["flops"], self.flops_at(task))
            uniform = self.scratch(task, seed, res["matched_width"])
            if uniform.key not in keys:
                keys.add(uniform.key)
                jobs.append(uniform)
        return jobs

    @functools.cache  # noqa: B019 - a Suite lives for the whole run; one function (and cache) a task
    def flops_at(self, task: str) -> Any:
        """Forward FLOPs per sample of the task's uniform net as a function of its width."""
        return st.uniform_flops(lambda w: self.scratch(task, 0, w).text)


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


# ---------------------------------------------------------------------------------------------


def print_tables(results: dict[tuple, dict], tasks: set[str], rbf_variance: float, plots: Path) -> None:
    """Every table of the selected tasks (markdown, to stdout) and their Pareto plots: first the
    one-protocol table of every method on every task, then each part's own tables."""
    everything, results = results, {k: v for k, v in results.items() if "error" not in v}
    for task in (t for t in PART if t in tasks):
        print(
            f"### Every method under one protocol: {task}\n\n"
            + report.protocol_table(everything, PART[task], task, regression=task == "rbf")
            + "\n"
        )
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


def machine() -> str:
    """The CPU, its cores and torch's version: the tables' figures hold digit for digit on one
    machine only (CPU kernels differ between machines)."""
    import platform

    import torch

    cpuinfo = Path("/proc/cpuinfo")  # Linux names the model there; platform says only "x86_64"
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    model = names[0] if names else platform.processor() or platform.machine()
    return f"{model}, {multiprocessing.cpu_count()} cores, torch {torch.__version__}"


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
        help="the grown arms of T1, T2 and T3 (default: every method of suite_tasks.METHODS)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per worker (another count sums in another order: a stand-in for another "
        "machine's kernels, to see which conclusions survive float-level differences)",
    )
    parser.add_argument("--json", type=Path, help="also write every run's records here (strict JSON)")
    parser.add_argument(
        "--from-json", type=Path, help="print the tables of a run's --json file instead of running"
    )
    args = parser.parse_args()
    if args.from_json:
        rows = strict_json.loads(args.from_json.read_text())
        results = {tuple(row.pop("key")): row for row in rows}
        with tempfile.TemporaryDirectory() as tmp:
            print_tables(results, set(args.tasks), make_data(Path(tmp)).rbf_variance, args.plots or Path(tmp))
        return
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

        suite = Suite(scale, data)
        methods = runnable(list(args.methods or st.METHODS))
        jobs = suite.first_phase([t for t in args.tasks if t in PART], methods)
        if "one-step" in tasks:
            jobs += one_step_jobs(scale, data)
        results = run_all(jobs, args.workers, args.threads)
        results |= run_all(suite.second_phase(results), args.workers, args.threads)
        if args.json:
            rows = [
                {"key": list(key), **{k: v for k, v in res.items() if k != "key"}}
                for key, res in results.items()
            ]
            args.json.write_text(strict_json.dumps(rows))
        print(f"## Growth suite ({'--quick' if args.quick else 'full'}, {' '.join(args.tasks)}): {scale}\n")
        print(f"machine: {machine()}; {args.workers} workers of {args.threads} torch thread(s) each\n")
        print_tables(results, tasks, data.rbf_variance, plots)
    print(
        f"\n{len(results)} runs, {args.workers} workers, {time.perf_counter() - start:.0f} s in all",
        flush=True,
    )


if __name__ == "__main__":
    main()
