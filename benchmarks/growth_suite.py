"""The growth benchmark suite (issue #11): does growth pay off at equal params, under the papers'
protocol (grow at convergence, fresh optimizer, restarted schedule)?

Every arm is a whole `growdsl run` of a spec (written to a temp dir, run through `growdsl.api`);
the synthetic teachers are generated here and read through `data csv(...)`. Seeds run in a pool
of 2 processes with one torch thread each, so the tables reproduce exactly on a rerun.

- T1, the splitting paper's 1-D toy: an RBF student (`linear(3..10) rbf linear(1, bias: false)`,
  i.e. input [x, 1]) fits an RBF teacher of 5 units; one neuron per step at a plateau of the
  training loss. Arms: exact, fast and random splitting, new random neurons, firefly, and
  scratch nets of every size 3..10 trained for the whole run's epochs. Reports the share of
  scratch students at the teacher's size left stuck (training MSE above 1 % of the targets'
  variance) before anything else.
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

    python benchmarks/growth_suite.py [--quick] [--plots DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import suite_tasks as st

DOCS = Path(__file__).parents[1] / "docs"
MLP = "linear({w}) as h1 tanh linear({w}) as h2 tanh linear(classes)"
MLP_TRAIN = "epochs {e} batch 64 optimizer adam(lr: 3e-3) seed {s}"
STUCK_SHARE_OF_VARIANCE = 0.01


@dataclass(frozen=True)
class Scale:
    """How big a run of the suite is: seeds and epochs per part."""

    t1_seeds: int
    t2_seeds: int
    one_step_seeds: int
    t1_epochs: int
    t2_epochs: int
    cnn_epochs: int
    parent_epochs: int
    finetune_epochs: int


FULL = Scale(10, 5, 10, t1_epochs=100, t2_epochs=30, cnn_epochs=16, parent_epochs=16, finetune_epochs=8)
QUICK = Scale(2, 2, 2, t1_epochs=40, t2_epochs=12, cnn_epochs=6, parent_epochs=6, finetune_epochs=3)


@dataclass(frozen=True)
class Job:
    """One run: its key in the results (part, task, arm, seed, ...), its seed and spec text."""

    key: tuple
    seed: int
    text: str


# ---------------------------------------------------------------------------------------------
# Running (in the worker processes).


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    from firefly_quality import RandomGrowth  # the random-growth arm of the firefly benchmark

    from growdsl import api  # noqa: F401 - imports growdsl.run before growdsl.grow (an import cycle)
    from growdsl.grow import policy

    policy.IMPLEMENTED_TRANSFORMS["randomgrow"] = RandomGrowth.from_call
    policy.KNOWN_TRANSFORMS["randomgrow"] = "random growth (benchmark)"


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

T1_TEACHER_UNITS = 5
T1_SIZES = range(3, 11)
T2_ARMS = ("split fast", "random split", "new random neurons", "firefly")
T2_WIDTHS = (4, 8, 12, 18, 24)
CNN_ARMS = ("split fast", "firefly", "new random neurons")
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
    teacher = st.RBFTeacher.make(T1_TEACHER_UNITS, seed=0)
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
    return f"{when} {st.AFTER_GROWTH} {st.GROWN_ARMS[arm].format(n=amount)}"


def t1_jobs(scale: Scale, data: Data) -> list[Job]:
    jobs = []
    for s in range(scale.t1_seeds):
        train = f"epochs {scale.t1_epochs} batch 50 loss mse optimizer adam(lr: 0.01) seed {s}"
        for arm in st.GROWN_ARMS:
            grow = _grow("when plateau(patience: 5, min_delta: 1e-4)", arm, "count: 1")
            model = RBF_MODEL.format(w=f"{T1_SIZES[0]}..{T1_SIZES[-1]}")
            jobs.append(Job(("T1", "rbf", arm, s), s, st.spec_text(data.rbf, model, train, grow)))
        for w in T1_SIZES:
            text = st.spec_text(data.rbf, RBF_MODEL.format(w=w), train)
            jobs.append(Job(("T1", "rbf", "scratch", s, w), s, text))
    return jobs


def t2_jobs(scale: Scale, data: Data) -> list[Job]:
    jobs = []
    for task, call in (("spirals", data.spirals), ("teacher", data.teacher)):
        for s in range(scale.t2_seeds):
            train = MLP_TRAIN.format(e=scale.t2_epochs, s=s)
            for arm in T2_ARMS:
                grow = _grow("when plateau(patience: 3, min_delta: 2e-3)", arm, "frac: 0.5")
                text = st.spec_text(call, MLP.format(w=f"{T2_WIDTHS[0]}..{T2_WIDTHS[-1]}"), train, grow)
                jobs.append(Job(("T2", task, arm, s), s, text))
            for w in T2_WIDTHS:
                jobs.append(Job(("T2", task, "scratch", s, w), s, st.spec_text(call, MLP.format(w=w), train)))
    return jobs


def cnn_jobs(scale: Scale, data: Data) -> list[Job]:
    jobs = []
    for s in range(scale.t2_seeds):
        train = f"epochs {scale.cnn_epochs} batch 64 optimizer adam(lr: 3e-3) seed {s}"
        for arm in CNN_ARMS:
            grow = _grow("when plateau(patience: 2, min_delta: 1e-3)", arm, "frac: 0.5")
            jobs.append(
                Job(
                    ("T3", "cnn", arm, s),
                    s,
                    st.spec_text(data.digits, CNN_MODEL.format(w="4..16"), train, grow),
                )
            )
    return jobs


ONE_STEP_COUNT = 4
ONE_STEP_WHEN = "when plateau(patience: 3, min_delta: 1e-3) until steps > 1"  # once, at convergence


def one_step_jobs(scale: Scale, data: Data) -> list[Job]:
    """Same seed: the same parent (init and data order) trained until its training loss plateaus
    (within `parent_epochs` + `finetune_epochs`); then each move once and the same training to the
    last epoch (a fresh optimizer after a move; "nothing" keeps its optimizer)."""
    jobs = []
    epochs = scale.parent_epochs + scale.finetune_epochs
    for task, call in (("spirals", data.spirals), ("teacher", data.teacher)):
        for s in range(scale.one_step_seeds):
            train = MLP_TRAIN.format(e=epochs, s=s)
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
        w = st.width_for_params(res["epochs"][-1]["params"], _mlp_count(task))
        uniform = ("T2", task, "scratch", seed, w)
        if uniform not in results and uniform not in {j.key for j in jobs}:
            text = results[("T2", task, "scratch", seed, T2_WIDTHS[0])]["spec_text"]
            jobs.append(Job(uniform, seed, text.replace(MLP.format(w=T2_WIDTHS[0]), MLP.format(w=w))))
    return jobs


# ---------------------------------------------------------------------------------------------
# Reading the runs.


def _metric(record: dict, regression: bool) -> float:
    """The test metric of an epoch record (the held-out split is the test split: no `val:`)."""
    return record["held_out_loss"] if regression else record["acc"]


def stages(res: dict, regression: bool) -> list[tuple[int, float, float]]:
    """(params, training loss, test metric) at the end of every growth stage: the epoch before
    each growth step, and the last epoch."""
    by_epoch = {r["epoch"]: r for r in res["epochs"]}
    ends = sorted({g["epoch"] for g in res["grows"]} | {res["epochs"][-1]["epoch"]})
    return [(by_epoch[e]["params"], by_epoch[e]["loss"], _metric(by_epoch[e], regression)) for e in ends]


def compute_to_reach(res: dict, target: float) -> float:
    """Forward FLOPs × training samples until the first epoch whose test accuracy reaches
    `target` (inf if none does); growth steps' own cost is not counted."""
    total = 0.0
    for r in res["epochs"]:
        total += r["flops"] * res["rows"]
        if r["acc"] >= target:
            return total
    return math.inf


def _mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def _arms(results: dict[tuple, dict], part: str, task: str) -> dict[str, list[dict]]:
    """Runs of one part and task by arm (scratch widths as `scratch <w>`), in seed order."""
    arms: dict[str, list[dict]] = defaultdict(list)
    for key in sorted(results, key=lambda k: (k[3], k[4:])):
        if key[0] == part and key[1] == task:
            arms[key[2] if len(key) == 4 else f"{key[2]} {key[4]}"].append(results[key])
    return arms


def _final_row(task: str, arm: str, runs: list[dict], regression: bool) -> str:
    last = [r["epochs"][-1] for r in runs]
    metric = [_metric(r, regression) for r in last]
    return (
        f"| {task} | {arm} | {_mean_std(metric)} | {_mean_std([r['loss'] for r in last], 5)} | "
        f"{_mean_std([float(r['params']) for r in last], 0)} | {len(runs)} |"
    )


def final_table(results: dict[tuple, dict], part: str, tasks: list[str], regression: bool) -> str:
    metric = "test MSE" if regression else "test accuracy"
    lines = [
        f"| task | arm | {metric} | training loss | params | seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for task in tasks:
        lines += [_final_row(task, arm, runs, regression) for arm, runs in _arms(results, part, task).items()]
    return "\n".join(lines)


def stuck_table(results: dict[tuple, dict], variance: float) -> str:
    """How many scratch students of each size end with a training MSE above 1 % of the targets'
    variance (the teacher is realisable at its own size, so the rest is a bad local fit)."""
    threshold = STUCK_SHARE_OF_VARIANCE * variance
    lines = ["| size | stuck seeds | training MSE per seed |", "| --- | --- | --- |"]
    for w in T1_SIZES:
        losses = [r["epochs"][-1]["loss"] for r in _arms(results, "T1", "rbf")[f"scratch {w}"]]
        mark = " (teacher's size)" if w == T1_TEACHER_UNITS else ""
        lines.append(
            f"| {w}{mark} | {sum(v > threshold for v in losses)}/{len(losses)} | "
            + " ".join(f"{v:.4f}" for v in losses)
            + " |"
        )
    return (
        f"threshold: training MSE > {threshold:.4f} (1 % of the targets' variance {variance:.4f})\n\n"
        + "\n".join(lines)
    )


def by_size_table(results: dict[tuple, dict]) -> str:
    """T1: test MSE (mean over seeds) of every arm at every size 3..10 (a grown arm at the end of
    each stage, scratch nets after their whole run)."""
    lines = ["| arm | " + " | ".join(map(str, T1_SIZES)) + " |", "| --- |" + " --- |" * len(T1_SIZES)]
    arms = _arms(results, "T1", "rbf")
    for arm in st.GROWN_ARMS:
        per_size: dict[int, list[float]] = defaultdict(list)
        for run in arms[arm]:
            for i, (_, _, mse) in enumerate(stages(run, regression=True)):
                per_size[T1_SIZES[0] + i].append(mse)
        lines.append(f"| {arm} | " + " | ".join(_short(per_size.get(w, [])) for w in T1_SIZES) + " |")
    scratch = [_short([r["epochs"][-1]["held_out_loss"] for r in arms[f"scratch {w}"]]) for w in T1_SIZES]
    return "\n".join([*lines, "| scratch | " + " | ".join(scratch) + " |"])


def _short(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f}" if values else "–"


def kinds_table(results: dict[tuple, dict]) -> str:
    """What firefly chose, summed over seeds: new neurons, splits, new layers."""
    lines = [
        "| task | new neurons | splits | new layers | growth records |",
        "| --- | --- | --- | --- | --- |",
    ]
    for part, task in (("T1", "rbf"), ("T2", "spirals"), ("T2", "teacher"), ("T3", "cnn")):
        grows = [g for run in _arms(results, part, task).get("firefly", []) for g in run["grows"]]
        details = [g.get("detail") or {} for g in grows]
        new = sum(d.get("new", 0) for d in details)
        split = sum(len(d.get("split", [])) for d in details)
        deeper = sum(d.get("kind") == "deeper" for d in details)
        lines.append(f"| {task} | {new} | {split} | {deeper} | {len(grows)} |")
    return "\n".join(lines)


def one_step_table(results: dict[tuple, dict]) -> str:
    """Each move against doing nothing, paired by seed (the same parent): training loss and test
    accuracy after the fine-tuning, and how many seeds the move beat nothing on training loss."""
    lines = [
        "| task | move | params | training loss | test accuracy | Δ training loss vs nothing | "
        "Δ test accuracy vs nothing | lower loss than nothing |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in ("spirals", "teacher"):
        arms = _arms(results, "one-step", task)
        base = [r["epochs"][-1] for r in arms["nothing"]]
        for arm, runs in arms.items():
            last = [r["epochs"][-1] for r in runs]
            d_loss = [a["loss"] - b["loss"] for a, b in zip(last, base, strict=True)]
            d_acc = [a["acc"] - b["acc"] for a, b in zip(last, base, strict=True)]
            lines.append(
                f"| {task} | {arm} | {_mean_std([float(r['params']) for r in last], 0)} | "
                f"{_mean_std([r['loss'] for r in last], 5)} | {_mean_std([r['acc'] for r in last])} | "
                f"{_mean_std(d_loss, 5)} | {_mean_std(d_acc)} | {sum(d < 0 for d in d_loss)}/{len(d_loss)} |"
            )
    return "\n".join(lines)


def _mlp_count(task: str):  # noqa: ANN202 - the params of a uniform-width net of the task
    inputs, classes = (2, 2) if task == "spirals" else (8, 4)
    return lambda w: st.mlp_params(inputs, [w, w], classes)


def equal_params_table(results: dict[tuple, dict], task: str) -> str:
    """Each grown arm's final net against the uniform-width net of the nearest params (the width
    solver), trained from scratch for the same epochs, paired by seed."""
    lines = [
        "| task | grown arm | its params | uniform width at equal params | "
        "Δ test accuracy (grown − uniform) | "
        "Δ training loss |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for arm in T2_ARMS:
        d_acc, d_loss, widths, params = [], [], set(), []
        for key, run in sorted(results.items()):
            if key[:3] != ("T2", task, arm):
                continue
            last = run["epochs"][-1]
            w = st.width_for_params(last["params"], _mlp_count(task))
            ref = results[("T2", task, "scratch", key[3], w)]["epochs"][-1]
            d_acc.append(last["acc"] - ref["acc"])
            d_loss.append(last["loss"] - ref["loss"])
            widths.add(w)
            params.append(float(last["params"]))
        lines.append(
            f"| {task} | {arm} | {_mean_std(params, 0)} | {sorted(widths)} | {_mean_std(d_acc)} | "
            f"{_mean_std(d_loss, 5)} |"
        )
    return "\n".join(lines)


def compute_table(results: dict[tuple, dict], task: str) -> tuple[float, str]:
    """Training compute to first reach a target test accuracy: 98 % of the widest scratch net's
    mean final accuracy. Medians over seeds of forward FLOPs × samples; runs that never reach it
    count as infinite."""
    arms = _arms(results, "T2", task)
    target = 0.98 * statistics.mean(r["epochs"][-1]["acc"] for r in arms[f"scratch {T2_WIDTHS[-1]}"])
    lines = [
        "| task | arm | reached | median compute to reach (MFLOP·samples) |",
        "| --- | --- | --- | --- |",
    ]
    for arm, runs in arms.items():
        costs = [compute_to_reach(r, target) for r in runs]
        reached = sum(math.isfinite(c) for c in costs)
        median = statistics.median(costs)
        lines.append(
            f"| {task} | {arm} | {reached}/{len(costs)} | {median / 1e6:.1f} |"
            if math.isfinite(median)
            else f"| {task} | {arm} | {reached}/{len(costs)} | not reached by half |"
        )
    return target, "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Pareto plots.


def pareto_plot(results: dict[tuple, dict], part: str, task: str, regression: bool, path: Path) -> Path:
    """Test metric and training loss against params: each grown arm's mean over seeds at every
    growth stage (stage k of every seed), and the scratch nets' mean at every width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_test, ax_train) = plt.subplots(1, 2, figsize=(11, 4.2))
    arms = _arms(results, part, task)
    for arm, runs in arms.items():
        if arm.startswith("scratch") or "from scratch" in arm:
            continue
        curves = [stages(r, regression) for r in runs]
        depth = min(map(len, curves))
        points = [[c[k] for c in curves] for k in range(depth)]
        xs = [statistics.mean(p[0] for p in pts) for pts in points]
        for ax, i in ((ax_test, 2), (ax_train, 1)):
            ax.plot(xs, [statistics.mean(p[i] for p in pts) for pts in points], "o-", label=arm, ms=4)
    widths = sorted(int(a.split()[1]) for a in arms if a.startswith("scratch "))
    full = [w for w in widths if len(arms[f"scratch {w}"]) == len(arms[f"scratch {widths[0]}"])]
    lasts = [[r["epochs"][-1] for r in arms[f"scratch {w}"]] for w in full]
    xs = [statistics.mean(r["params"] for r in rows) for rows in lasts]
    for ax, field in ((ax_test, "held_out_loss" if regression else "acc"), (ax_train, "loss")):
        ax.plot(
            xs,
            [statistics.mean(r[field] for r in rows) for rows in lasts],
            "s--k",
            label="scratch (uniform width)",
        )
        ax.set_xlabel("params")
        ax.set_xscale("log")
    ax_test.set_ylabel("test MSE" if regression else "test accuracy")
    ax_train.set_ylabel("training loss")
    ax_train.set_yscale("log")
    if regression:
        ax_test.set_yscale("log")
    ax_test.legend(fontsize=8)
    fig.suptitle(
        f"growth suite, {task}: mean over {len(arms[f'scratch {full[0]}'])} seeds, one point per growth stage"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds and short runs: a couple of minutes")
    parser.add_argument(
        "--plots", type=Path, help="folder for the PNGs (default: docs/, or the temp dir with --quick)"
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp))
        plots = args.plots or (Path(tmp) if args.quick else DOCS)
        jobs = (
            t1_jobs(scale, data) + t2_jobs(scale, data) + cnn_jobs(scale, data) + one_step_jobs(scale, data)
        )
        results = run_all(jobs, args.workers)
        results |= run_all(second_phase_jobs(results), args.workers)
        print(f"## Growth suite ({'--quick' if args.quick else 'full'}): {scale}\n")
        print(
            "### T1: is the scratch student stuck at the teacher's size?\n\n"
            + stuck_table(results, data.rbf_variance)
        )
        print("\n### T1: final nets\n\n" + final_table(results, "T1", ["rbf"], regression=True))
        print("\n### T1: test MSE at every size\n\n" + by_size_table(results))
        print(
            "\n### T2: final nets\n\n" + final_table(results, "T2", ["spirals", "teacher"], regression=False)
        )
        for task in ("spirals", "teacher"):
            print(f"\n### T2, {task}: at equal params\n\n" + equal_params_table(results, task))
            target, table = compute_table(results, task)
            print(f"\n### T2, {task}: compute to reach test accuracy {target:.4f}\n\n" + table)
        print("\n### T3: digits CNN\n\n" + final_table(results, "T3", ["cnn"], regression=False))
        print("\n### T3: what firefly chose (summed over seeds)\n\n" + kinds_table(results))
        print("\n### The paired one-step test\n\n" + one_step_table(results))
        for part, task, regression in (
            ("T1", "rbf", True),
            ("T2", "spirals", False),
            ("T2", "teacher", False),
        ):
            path = pareto_plot(results, part, task, regression, plots / f"growth_suite_{task}.png")
            print(f"\nplot: {path}", file=sys.stderr)
    print(
        f"\n{len(results)} runs, {args.workers} workers, {time.perf_counter() - start:.0f} s in all",
        flush=True,
    )


if __name__ == "__main__":
    main()
