"""The tables and plots of benchmarks/growth_suite.py, read from its runs' results (each a dict
of the run's epoch and growth records, final metrics and rows an epoch trains on, keyed by
`(part, task, arm, seed[, width])`)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path

import suite_tasks as st
from suite_tasks import T1_SIZES, T1_TEACHER_UNITS, T2_WIDTHS

from growdsl.payoff.measure import BACKWARD_FACTOR
from growdsl.payoff.stats import paired, summarize, t975

RBF_PARAMS_PER_UNIT = 3  # x and the bias in, one weight out (no output bias)
STUCK_SHARE_OF_VARIANCE = 0.10  # stuck: final training MSE above 10 % of the targets' variance

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


def training_compute(res: dict) -> float:
    """Training FLOPs of a whole run: 3 × forward FLOPs per sample (a backward costs about two
    forwards) × the rows an epoch trains on, summed over epochs with each epoch's net, as
    `growdsl payoff` counts it (docs/methods/payoff.md); growth steps' own work not included."""
    return float(sum(BACKWARD_FACTOR * r["flops"] * res["rows"] for r in res["epochs"]))


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


def _grown(arms: dict[str, list[dict]]) -> list[str]:
    """The grown arms among a task's arms (the methods that ran), in the order of `METHODS`."""
    return [m for m in st.METHODS if m in arms]


def _final_row(task: str, arm: str, runs: list[dict], regression: bool) -> str:
    last = [r["epochs"][-1] for r in runs]
    metric = [_metric(r, regression) for r in last]
    compute = statistics.mean(training_compute(r) for r in runs)
    return (
        f"| {task} | {arm} | {_mean_std(metric)} | {_mean_std([r['loss'] for r in last], 5)} | "
        f"{_mean_std([float(r['params']) for r in last], 0)} | {compute:.3g} | {len(runs)} |"
    )


def final_table(results: dict[tuple, dict], part: str, tasks: list[str], regression: bool) -> str:
    metric = "test MSE" if regression else "test accuracy"
    lines = [
        f"| task | arm | {metric} | training loss | params | training compute (FLOPs) | seeds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in tasks:
        lines += [_final_row(task, arm, runs, regression) for arm, runs in _arms(results, part, task).items()]
    return "\n".join(lines)


def stuck_table(results: dict[tuple, dict], variance: float) -> str:
    """How many T1 nets end with a training MSE above 10 % of the targets' variance: the scratch
    students of each size (the teacher is realisable at its own size, so the rest is a bad local
    fit), then the grown arms, which all start at the teacher's size, and their final nets from
    scratch (their final size in units)."""
    threshold = STUCK_SHARE_OF_VARIANCE * variance
    lines = ["| net | stuck seeds | training MSE per seed |", "| --- | --- | --- |"]
    for arm, runs in _arms(results, "T1", "rbf").items():
        losses = [r["epochs"][-1]["loss"] for r in runs]
        mse = [f"{v:.4f}" for v in losses]
        if arm.startswith("scratch"):
            name = arm + (" (teacher's size)" if arm == f"scratch {T1_TEACHER_UNITS}" else "")
        else:  # a grown net, or a grown net's final size from scratch: its size in brackets
            name = arm if "from scratch" in arm else f"{arm}, from {T1_SIZES[0]} units"
            mse = [
                f"{v} ({r['epochs'][-1]['params'] // RBF_PARAMS_PER_UNIT})"
                for v, r in zip(mse, runs, strict=True)
            ]
        lines.append(f"| {name} | {sum(v > threshold for v in losses)}/{len(losses)} | {' '.join(mse)} |")
    return (
        f"threshold: training MSE > {threshold:.4f} "
        f"({STUCK_SHARE_OF_VARIANCE:.0%} of the targets' variance {variance:.4f}); a grown net's final "
        "size in units in brackets\n\n" + "\n".join(lines)
    )


def by_size_table(results: dict[tuple, dict]) -> str:
    """T1: test MSE (mean over seeds) of every arm at every size 3..10 (a grown arm at the end of
    each stage, scratch nets after their whole run)."""
    lines = ["| arm | " + " | ".join(map(str, T1_SIZES)) + " |", "| --- |" + " --- |" * len(T1_SIZES)]
    arms = _arms(results, "T1", "rbf")
    for arm in _grown(arms):
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
        runs = _arms(results, part, task).get("firefly")
        if runs is None:  # the task was not run (`--tasks`)
            continue
        grows = [g for run in runs for g in run["grows"]]
        details = [g.get("detail") or {} for g in grows]
        new = sum(d.get("new", 0) for d in details)
        split = sum(len(d.get("split", [])) for d in details)
        deeper = sum(d.get("kind") == "deeper" for d in details)
        lines.append(f"| {task} | {new} | {split} | {deeper} | {len(grows)} |")
    return "\n".join(lines)


def steps_table(results: dict[tuple, dict], part: str, task: str) -> str:
    """Each grown arm's growth steps: how many per seed and the epochs they came at (a step is an
    epoch with growth records: both layers grown at once are one step)."""
    lines = [
        "| task | arm | steps per seed | epochs of the steps, per seed |",
        "| --- | --- | --- | --- |",
    ]
    for arm, runs in _arms(results, part, task).items():
        if arm.startswith("scratch") or "from scratch" in arm:
            continue
        epochs = [sorted({g["epoch"] for g in run["grows"]}) for run in runs]
        steps = " ".join(str(len(e)) for e in epochs)
        at = "; ".join(" ".join(map(str, e)) or "none" for e in epochs)
        lines.append(f"| {task} | {arm} | {steps} | {at} |")
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


def _interval(values: list[float], digits: int) -> str:
    """The mean and its 95 % interval (Student's t over the seeds)."""
    m = summarize(values)
    if m.sd is None:
        return f"{m.mean:.{digits}f}"
    half = t975(m.n - 1) * m.sd / math.sqrt(m.n)
    return f"{m.mean:.{digits}f} [{m.mean - half:.{digits}f}, {m.mean + half:.{digits}f}]"


def _paired(a: list[float], b: list[float], digits: int) -> str:
    """a − b paired by seed: the mean, its 95 % interval and t (docs/methods/payoff.md). The
    differences are rounded to 10 decimals first: equal differences of accuracies (multiples of
    1/rows) would otherwise carry float noise as a tiny sd and print an absurd t."""
    d = paired([round(x - y, 10) for x, y in zip(a, b, strict=True)], [0.0] * len(a))
    if d.low is None:
        return f"{d.mean:+.{digits}f}"
    t = "" if d.t is None else f", t {d.t:.2f}"
    return f"{d.mean:+.{digits}f} [{d.low:+.{digits}f}, {d.high:+.{digits}f}]{t}"


def protocol_table(results: dict[tuple, dict], part: str, task: str, regression: bool) -> str:
    """Every method on one task under one protocol, paired by seed: its final net's test metric,
    params and training compute, against (a) the uniform-width net of the nearest forward FLOPs
    (`matched_width`, the FLOP-matched fixed-width baseline) and (b) its own final architecture,
    both trained from scratch for the same epochs. A method that refused the task's model is a row
    with its reason (`error`)."""
    metric, digits = ("test MSE", 5) if regression else ("test accuracy", 4)
    better = "lower is better" if regression else "higher is better"
    lines = [
        f"| method | seeds | {metric} [95 % CI] | params | "
        "training compute, GFLOP (÷ FLOP-matched scratch's) | "
        f"Δ {metric} vs FLOP-matched uniform [95 % CI], t | Δ vs its final net from scratch [95 % CI], t |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in st.METHODS:
        keys = sorted(k for k in results if k[:3] == (part, task, method))
        if not keys:
            continue
        errors = sorted({results[k]["error"] for k in keys if "error" in results[k]})
        if errors:
            lines.append(f"| {method} | {len(keys)} | refused: {'; '.join(errors)} | | | | |")
            continue
        runs = [results[k] for k in keys]
        uniform = [results[(part, task, "scratch", k[3], results[k]["matched_width"])] for k in keys]
        final = [results[(part, task, f"{method}, final net from scratch", k[3])] for k in keys]
        value = [_metric(r["epochs"][-1], regression) for r in runs]
        compute = [training_compute(r) for r in runs]
        ratio = statistics.mean(c / training_compute(u) for c, u in zip(compute, uniform, strict=True))
        widths = sorted({r["matched_width"] for r in runs})
        lines.append(
            f"| {method} | {len(runs)} | {_interval(value, digits)} | "
            f"{statistics.mean(r['epochs'][-1]['params'] for r in runs):.0f} | "
            f"{statistics.mean(compute) / 1e9:.3g} ({ratio:.2f}x) | "
            f"{_paired(value, [_metric(u['epochs'][-1], regression) for u in uniform], digits)} "
            f"(widths {widths[0]}–{widths[-1]}) | "
            f"{_paired(value, [_metric(f['epochs'][-1], regression) for f in final], digits)} |"
        )
    return f"{metric}: {better}.\n\n" + "\n".join(lines)


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
    """Test metric and training loss against params: each grown arm's mean at every growth stage
    over the seeds that reached it, and the scratch nets' mean at every width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_test, ax_train) = plt.subplots(1, 2, figsize=(11, 4.2))
    arms = _arms(results, part, task)
    for arm, runs in arms.items():
        if arm.startswith("scratch") or "from scratch" in arm:
            continue
        curves = [stages(r, regression) for r in runs]
        # stage k over the seeds that reached it (the plateau trigger fires at different epochs)
        points = [[c[k] for c in curves if len(c) > k] for k in range(max(map(len, curves)))]
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
