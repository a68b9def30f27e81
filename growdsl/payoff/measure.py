"""`growdsl payoff SPEC`: does growth pay off on this task? The grown net against what the same
training budget buys without growing, paired by seed.

Arms (docs/cli.md, "payoff"; the reasoning in docs/methods/payoff.md):

- `grown`: the spec as written.
- `final_scratch`: each seed's grown architecture (its `final.grow`) trained from scratch for the
  same epochs: did growing beat simply training the net it ended at?
- `uniform`: uniform widths (growdsl/payoff/arms.py) with about the grown net's params.
- `start`: the spec without its `grow` block: did growing beat not growing?
- `sweep`: k uniform widths from the start net to the ranges' high ends, each trained the same
  epochs; per seed the width with the best held-out score is the sweep's pick (the `val:` split
  when the spec has one, else the test split, which flatters the sweep), and its compute is all k
  runs': the price of finding a width by trying.

Every arm of seed s trains with seed s (initialisation, data order, growth's samples) on the same
split (the spec's `seed` draws it): differences between arms of one seed are the arms' own.
Trainings run in the search's worker pool (growdsl/search/backends.py); identical trainings
(the sweep's first width is the start net) run once.

Training compute is counted as 3 × forward FLOPs per sample (a backward pass costs about two
forwards) × the samples each epoch trains on, summed over epochs with each epoch's net (a grown
net costs what it was while it trained). The growth steps' own work (scoring candidates, firefly's
brief training) is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from growdsl import ir, plugins, strict_json
from growdsl.compile import compile_graph
from growdsl.errors import RunError, SpecError
from growdsl.export.spec import final_spec
from growdsl.grow.policy import check_grow
from growdsl.lang.ast import Spec
from growdsl.payoff import arms
from growdsl.payoff.stats import Paired, paired, summarize
from growdsl.run import datasets
from growdsl.run.config import TrainConfig, train_config
from growdsl.run.datasets import Splits
from growdsl.run.loop import evaluate
from growdsl.run.member import initial_payload
from growdsl.search.backends import MemberJob, TrainingContext, make_backend, threads_per_member
from growdsl.search.placement import Backend

ARMS = ("grown", "final_scratch", "uniform", "start", "sweep")
BACKWARD_FACTOR = 3  # training FLOPs per sample: one forward and a backward of about two forwards


@dataclass(frozen=True)
class Trial:
    """One training: an arm's net for one seed (`fraction`: a sweep member's place)."""

    arm: str
    seed: int
    graph: ir.ArchGraph = field(compare=False)
    grows: bool = False
    fraction: float | None = None

    def key(self) -> tuple[str, int, bool]:
        """Trainings with the same key are the same training."""
        return strict_json.dumps(ir.to_json(self.graph), sort_keys=True), self.seed, self.grows


@dataclass(frozen=True)
class Outcome:
    """What a training ended with."""

    test_acc: float | None
    test_loss: float
    train_loss: float
    held_out: float  # the last epoch's held-out accuracy (minus its loss for regression): higher is better
    params: int
    compute: int
    graph: ir.ArchGraph


@dataclass
class Payoff:
    """Every arm's outcomes, by seed (the sweep's: per width, and the pick per seed)."""

    spec: str
    seeds: list[int]
    metric: str  # test_acc, or test_loss for a regression target
    outcomes: dict[str, list[Outcome]]
    sweep: list[tuple[float, list[Outcome]]]
    notes: list[str]

    def values(self, arm: str, what: str) -> list[Any]:
        return [getattr(o, what) for o in self.outcomes[arm]]

    def paired(self, arm: str) -> Paired:
        """grown - arm on the metric (for a loss, lower is better)."""
        return paired(self.values("grown", self.metric), self.values(arm, self.metric))

    def sweep_compute(self) -> list[int]:
        return [sum(outs[i].compute for _, outs in self.sweep) for i in range(len(self.seeds))]

    def to_json(self) -> dict[str, Any]:
        def arm(outs: list[Outcome], compute: list[int] | None = None) -> dict[str, Any]:
            return {
                "test_acc": [o.test_acc for o in outs],
                "test_loss": [o.test_loss for o in outs],
                "train_loss": [o.train_loss for o in outs],
                "params": [o.params for o in outs],
                "compute": compute or [o.compute for o in outs],
            }

        out: dict[str, Any] = {"spec": self.spec, "seeds": self.seeds, "metric": self.metric}
        out["compute_unit"] = "training FLOPs: 3 x forward FLOPs per sample x samples seen"
        out["arms"] = {
            name: arm(outs, self.sweep_compute() if name == "sweep" else None)
            for name, outs in self.outcomes.items()
        }
        out["paired"] = {a: vars(self.paired(a)) for a in self.outcomes if a != "grown"}
        out["sweep"] = [
            {"fraction": t, "widths": arms.widths_of(outs[0].graph), **arm(outs)} for t, outs in self.sweep
        ]
        out["notes"] = self.notes
        return out


Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What `payoff` will train, settled before any data is read or any net trained: the spec is
    one payoff can measure, its grow block fits its model, and the start net and the sweep's
    widths are known."""

    spec: Spec
    info: datasets.DataInfo
    config: TrainConfig
    start: ir.ArchGraph
    seeds: list[int]
    widths: int
    notes: tuple[str, ...]

    def first_round(self) -> list[Trial]:
        """The trainings that need nothing trained before them: grown, start and the sweep."""
        trials = [Trial("grown", s, self.start, grows=True) for s in self.seeds]
        trials += [Trial("start", s, self.start) for s in self.seeds]
        if arms.has_widths(self.start):
            trials += [
                Trial("sweep", s, arms.at_fraction(self.start, t), fraction=t)
                for t in arms.sweep_fractions(self.widths)
                for s in self.seeds
            ]
        return trials


def plan(spec: Spec, seeds: int = 5, widths: int = 4) -> Plan:
    """Check that payoff can measure `spec` and settle its arms (no data read, nothing trained);
    every reason it cannot is a GrowDSLError (exit code 2)."""
    if spec.grow is None:
        raise RunError(f"{spec.file} has no grow block: payoff compares a grown net with its alternatives")
    if spec.search is not None:
        raise RunError(f"{spec.file} has a search block: payoff measures one growing net, not a search")
    info = datasets.describe(spec.data)
    if info.tasks:
        raise SpecError(
            "payoff compares a grown net with nets trained from scratch on one data set, and this "
            "spec trains on a sequence of tasks: there a grown net keeps the old tasks' outputs by "
            "freezing the neurons they use and adding new ones, which a net trained from scratch "
            "cannot do, so its final net from scratch, uniform widths and sweep are no baselines",
            spec.data.span if spec.data is not None else None,
            hint="compare continual growth with random growth and fixed nets (frozen, or forgetting): "
            "docs/methods/payoff.md, 'A sequence of tasks'",
        )
    config = train_config(spec.train, regression=info.classes is None)
    start = ir.lower(spec, info.input_shape, info.classes)
    check_grow(spec.grow, start)
    notes = () if arms.has_widths(start) else ("no growable width range: no uniform or sweep arm",)
    return Plan(spec, info, config, start, [config.seed + i for i in range(seeds)], widths, notes)


def payoff(
    spec: Spec, seeds: int = 5, widths: int = 4, workers: int = 2, progress: Progress | None = None
) -> Payoff:
    """Train every arm for `seeds` seeds (the spec's seed and the next ones) and `widths` sweep
    widths in `workers` processes; `progress` gets a line per finished training."""
    planned = plan(spec, seeds, widths)
    config, start, seed_list, info = planned.config, planned.start, planned.seeds, planned.info
    data = datasets.load_data(spec.data, config.seed)
    notes = list(planned.notes)
    context = TrainingContext(data, config, spec.grow, threads_per_member(workers), tuple(plugins.loaded()))
    backend = make_backend(Backend("local"), context, workers)
    runner = _Runner(backend, data, config, progress or (lambda _line: None))
    try:
        done = runner.train(planned.first_round())
        grown = {s: done[Trial("grown", s, start, grows=True).key()] for s in seed_list}
        second = [Trial("final_scratch", s, _from_final_grow(spec, grown[s].graph, info)) for s in seed_list]
        if arms.has_widths(start):
            second += [
                Trial("uniform", s, arms.at_fraction(start, arms.fraction_for_params(start, grown[s].params)))
                for s in seed_list
            ]
        done |= runner.train(second)
    finally:
        backend.close()
    by_arm: dict[str, list[Trial]] = {}
    for trial in runner.trials:
        by_arm.setdefault(trial.arm, []).append(trial)
    outcomes = {a: [done[t.key()] for t in by_arm[a] if t.fraction is None] for a in ARMS if a in by_arm}
    sweep = [
        (t, [done[x.key()] for x in by_arm.get("sweep", []) if x.fraction == t])
        for t in arms.sweep_fractions(widths)
        if "sweep" in by_arm
    ]
    if sweep:
        outcomes["sweep"] = [
            max((outs[i] for _, outs in sweep), key=lambda o: o.held_out) for i in range(seeds)
        ]
        if data.val is None:
            notes.append(
                "no val split: the sweep picks its width on the test split (this flatters the sweep)"
            )
    metric = "test_acc" if info.classes is not None else "test_loss"
    return Payoff(spec.file, seed_list, metric, outcomes, sweep, notes)


def _from_final_grow(spec: Spec, graph: ir.ArchGraph, info: datasets.DataInfo) -> ir.ArchGraph:
    """The grown net as `growdsl run final.grow` builds it: the final spec, lowered afresh."""
    return ir.lower(final_spec(spec, graph), info.input_shape, info.classes)


class _Runner:
    """Trains trials in the backend (each distinct training once) and evaluates them here."""

    def __init__(self, backend: Any, data: Splits, config: TrainConfig, progress: Progress) -> None:
        self.backend, self.data, self.config, self.progress = backend, data, config, progress
        self.trials: list[Trial] = []
        self.done: dict[tuple, Outcome] = {}
        self.started = time.perf_counter()

    def train(self, trials: list[Trial]) -> dict[tuple, Outcome]:
        """Every trial's outcome (trained here unless an earlier call trained the same)."""
        self.trials += trials
        unique = [t for t in {t.key(): t for t in trials}.values() if t.key() not in self.done]
        jobs = [
            MemberJob(
                i,
                initial_payload(t.graph, self.config, t.seed, self.config.epochs),
                self.config.epochs,
                grows=t.grows,
                seed=t.seed,
            )  # fmt: skip
            for i, t in enumerate(unique)
        ]
        done = self.done
        for count, result in enumerate(self.backend.run(jobs), 1):
            trial = unique[result.member]
            if result.payload is None:
                raise RunError(f"payoff: the {trial.arm} net of seed {trial.seed} failed: {result.error}")
            done[trial.key()] = self._outcome(result.payload)
            self.progress(
                f"[{count}/{len(jobs)} {time.perf_counter() - self.started:.0f} s] {_name(trial)} seed "
                f"{trial.seed}: test {_show(done[trial.key()])}"
            )
        return {t.key(): done[t.key()] for t in trials}

    def _outcome(self, payload: dict[str, Any]) -> Outcome:
        graph = ir.from_json(payload["graph"])
        model = compile_graph(graph)
        model.load_state_dict(payload["model"])
        test_loss, test_acc = evaluate(model, self.data.test, self.config.loss)
        epochs = [r for r in payload["history"] if r["event"] == "epoch"]
        last = epochs[-1]
        samples = _samples_per_epoch(len(self.data.train[0]), self.config.batch)
        return Outcome(
            test_acc=test_acc,
            test_loss=test_loss,
            train_loss=last["loss"],
            held_out=last["acc"] if last["acc"] is not None else -last["held_out_loss"],
            params=ir.param_count(graph),
            compute=sum(BACKWARD_FACTOR * r["flops"] * samples for r in epochs),
            graph=graph,
        )


def _samples_per_epoch(rows: int, batch: int) -> int:
    """The rows an epoch trains on: a last batch of one row is dropped (growdsl/run/loop.py)."""
    return rows - 1 if rows > batch and rows % batch == 1 else rows


def _name(trial: Trial) -> str:
    return trial.arm if trial.fraction is None else f"sweep t={trial.fraction:.2f}"


def _show(outcome: Outcome) -> str:
    if outcome.test_acc is not None:
        return f"acc {outcome.test_acc:.4f}"
    return f"loss {outcome.test_loss:.4g}"


def summary_lines(result: Payoff) -> list[str]:
    """The printed report: each arm's mean ± sd, the paired differences, the compute."""
    metric = "test acc" if result.metric == "test_acc" else "test loss"
    lines = [
        f"{result.spec}: {len(result.seeds)} seeds ({', '.join(map(str, result.seeds))}), paired by seed",
        "",
    ]
    rows = [["arm", metric, "train loss", "params", "compute (FLOPs)"]]
    for arm, outs in result.outcomes.items():
        compute = result.sweep_compute() if arm == "sweep" else [o.compute for o in outs]
        rows.append([
            arm if arm != "sweep" else f"sweep ({len(result.sweep)} widths, pick)",
            _mean_sd(result.values(arm, result.metric)),
            _mean_sd(result.values(arm, "train_loss")),
            f"{summarize(result.values(arm, 'params')).mean:,.0f}",
            f"{summarize(compute).mean:.3g}",
        ])  # fmt: skip
    lines += _aligned(rows)
    lines += ["", f"grown - arm, {metric} (mean, 95 % interval, t):"]
    pairs = [["arm", "difference", "interval", "t"]]
    for arm in result.outcomes:
        if arm == "grown":
            continue
        p = result.paired(arm)
        interval = "-" if p.low is None else f"[{p.low:+.4f}, {p.high:+.4f}]"
        pairs.append([arm, f"{p.mean:+.4f}", interval, "-" if p.t is None else f"{p.t:+.2f}"])
    lines += _aligned(pairs)
    if result.sweep:
        grown, sweep = (
            summarize(result.values("grown", "compute")).mean,
            summarize(result.sweep_compute()).mean,
        )
        lines += [
            "",
            f"compute: the grown run {grown:.3g} FLOPs, the whole sweep {sweep:.3g} ({grown / sweep:.2f}x)",
        ]
    return lines + [f"note: {n}" for n in result.notes]


def _mean_sd(values: list[float]) -> str:
    s = summarize(values)
    return f"{s.mean:.4f}" + ("" if s.sd is None else f" ± {s.sd:.4f}")


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
