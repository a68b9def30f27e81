"""The `search` declaration: which method, its options, and what it needs of the spec.

`search_config(decl)` validates a declaration into a `SearchConfig` (every mistake a SpecError at
its place); `check_search` adds what `growdsl check` can say before any training: the model must
leave something open to search (for `pathlevel`: a cell, a `block`, for the controller to act
on), the data must hold a validation split out (members are ranked on it, never on the test
split), and `backend: ray` needs Ray installed. docs/search.md is the user's reference for every
option.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from growdsl.errors import SpecError
from growdsl.ir.graph import ArchGraph
from growdsl.lang.ast import Call, Name, Num, SearchDecl, TrainBlock, Value
from growdsl.lang.suggest import not_implemented_message, unknown_name_message
from growdsl.options import BadValue, Option, integer, number, read_options
from growdsl.run.hparams import open_hparams
from growdsl.search.constraints import broken, ceilings, read_where
from growdsl.search.placement import Backend, check_device, concurrency, read_backend
from growdsl.search.space import positions

KNOWN_SEARCHES: dict[str, str] = {
    "random": "random search",
    "pbt": "PBT-NAS (mixing good networks, shrink-perturb)",
    "pathlevel": "path-level search with a tree-LSTM controller",
    "evolution": "regularized (aging) evolution",
}
# the methods that run: the module that registers each (growdsl/search/registry.py)
SEARCH_MODULES: dict[str, str] = {
    "random": "growdsl.search.random_search",
    "pbt": "growdsl.search.population",
    "pathlevel": "growdsl.search.pathlevel",
    "evolution": "growdsl.search.evolution",
}
NO_HPARAMS = ("pathlevel",)  # methods that train every child with the spec's one setting
SHARED_EPOCHS = ("pbt",)  # methods whose members train in step, so epochs is one for all
if TYPE_CHECKING:
    from growdsl.search.stopping import Rule

RAY_HINT = "install Ray with: pip install growdsl[ray] (or pip install ray)"


def _mode(value: Value) -> str:
    if isinstance(value, Name) and value.id in ("mix", "mutate", "searl"):
        return value.id
    raise BadValue("mix (PBT-NAS), mutate (one position redrawn) or searl (the authors' mutation baseline)")


def _donor(value: Value) -> str:
    if isinstance(value, Name) and value.id in ("other", "self"):
        return value.id
    raise BadValue("other (a second parent, PBT-NAS) or self (mixing with itself: no new architecture)")


def _stop(value: Value) -> Rule:
    from growdsl.search.stopping import Rule

    if isinstance(value, Call) and value.name == "asha":
        options = {
            "grace": Option(1, integer(1), "epochs before the first rung"),
            "eta": Option(3, integer(2), "the reduction factor"),
        }
        opts = read_options(value, options, "asha option")
        return Rule("asha", opts["grace"], opts["eta"])
    if isinstance(value, Call) and value.name == "median":
        options = {"grace": Option(2, integer(1), "epochs before any stop")}
        return Rule("median", read_options(value, options, "median option")["grace"])
    raise BadValue("asha(grace: 1, eta: 3) or median(grace: 2)")


def _controller(value: Value) -> str:
    if isinstance(value, Name) and value.id in ("treelstm", "random"):
        return value.id
    raise BadValue("treelstm (the learned controller) or random (uniform decisions, the baseline)")


MAX_MEMBERS = 10_000
"""The most trials or members one search takes: a population lives in the search's state (random
search draws its trials as they train and keeps only the leader's weights, but its log and its
per-trial fitness grow with them), and a larger count is far more likely a slip
(`trials: 1000000`) than a plan."""

COMMON_OPTIONS = {  # every search's: the loop reads them
    "backend": Option(Backend("local"), read_backend, "where members train: local or ray, GPUs too"),
    "workers": Option(None, integer(1), "members trained at once (default: the CPU cores, or the GPU slots)"),
    "where": Option((), read_where, "bounds every member satisfies: params <= 200k, flops < 5M, or a list"),
}
SEARCH_OPTIONS: dict[str, dict[str, Option]] = {
    "random": {
        "trials": Option(20, integer(1, MAX_MEMBERS), "architectures drawn and trained"),
        "stop": Option(None, _stop, "early stopping: asha(grace: 1, eta: 3) or median(grace: 2)"),
        **COMMON_OPTIONS,
    },
    "pbt": {
        "population": Option(8, integer(2, MAX_MEMBERS), "members trained side by side"),
        "every": Option(2, integer(1), "epochs between exploit steps"),
        "replace": Option(0.25, number(0.0, 0.5, lo_open=True), "share of the population replaced"),
        "mix": Option(0.25, number(0.0, 1.0), "chance a position is taken from parent 2"),
        "shrink": Option(0.4, number(0.0), "shrink factor of the weights taken from parent 2"),
        "perturb": Option(0.1, number(0.0), "weight of a fresh initialisation added to them"),
        "mode": Option("mix", _mode, "mix (PBT-NAS), mutate (one position redrawn) or searl"),
        "donor": Option("other", _donor, "other (a second parent) or self (no new architecture)"),
        **COMMON_OPTIONS,
    },
    "evolution": {
        "population": Option(10, integer(2), "members alive at once (the first ones drawn from the space)"),
        "sample": Option(3, integer(1), "members sampled each cycle; the fittest is the parent"),
        "cycles": Option(20, integer(1), "children made, each one mutation of its parent"),
        **COMMON_OPTIONS,
    },
    "pathlevel": {
        "controller": Option("treelstm", _controller, "treelstm or random"),
        "episodes": Option(10, integer(1), "controller updates, each after a batch of children"),
        "batch": Option(10, integer(1), "children sampled, trained and scored per episode"),
        "epochs": Option(2, integer(1), "epochs each child trains from the base net's weights"),
        "lr": Option(6e-3, number(0.0, lo_open=True), "the controller's Adam learning rate"),
        "child_lr": Option(0.035, number(0.0, lo_open=True), "a child's fresh SGD's learning rate (cosine)"),
        "noise": Option(6e-3, number(0.0), "replication noise: std of a copy's W entries over std(W)"),
        **COMMON_OPTIONS,
    },
}


@dataclass(frozen=True)
class SearchConfig:
    method: str
    options: dict[str, Any]
    decl: SearchDecl

    @property
    def backend(self) -> Backend:
        return self.options["backend"]

    @property
    def workers(self) -> int:
        """Members trained at once at most (growdsl/search/placement.py: `concurrency`)."""
        return concurrency(self.backend, self.options["workers"])


def search_config(decl: SearchDecl) -> SearchConfig:
    """The validated search declaration; a SpecError at the place of any mistake."""
    call = decl.method
    if call.name not in KNOWN_SEARCHES:
        raise SpecError(unknown_name_message("search method", call.name, KNOWN_SEARCHES), call.span)
    if call.name not in SEARCH_MODULES:
        raise SpecError(
            not_implemented_message("search method", call.name, KNOWN_SEARCHES[call.name]),
            call.span,
            hint="remove the search block to train the first architecture of the space",
        )
    options = read_options(call, SEARCH_OPTIONS[call.name], f"{call.name} option")
    given = call.keywords
    if options["backend"].name == "ray" and importlib.util.find_spec("ray") is None:
        raise SpecError("backend ray needs Ray, which is not installed", given["backend"].span, hint=RAY_HINT)
    if call.name == "pbt" and options["mode"] != "mix":
        for name in ("mix", "shrink", "perturb", "donor"):
            if name in given:
                raise SpecError(f"pbt option '{name}' applies to mode: mix only", given[name].span)
    return SearchConfig(call.name, options, decl)


def check_search(
    decl: SearchDecl | None, graph: ArchGraph, data: Call | None, train: TrainBlock | None = None
) -> None:
    """Everything `growdsl check` can say of a search before training (see the module docstring):
    `graph` is the spec's lowered model, `data` its data call (None: the default digits), `train`
    its train block (whose open settings a search draws too)."""
    if decl is None:
        return
    config = search_config(decl)
    check_device(decl.method.keywords.get("backend"), train)
    hypers = open_hparams(train)
    if hypers and config.method in NO_HPARAMS:
        raise SpecError(
            f"{config.method} search draws no hyperparameters, and `{hypers[0].key}` is left open",
            hypers[0].value.span,
            hint="give it one value, or search it with random, pbt or evolution",
        )
    if config.method in SHARED_EPOCHS and (epochs := next((h for h in hypers if h.key == "epochs"), None)):
        raise SpecError(
            f"{config.method} trains its members side by side for the same epochs: `epochs` cannot be drawn",
            epochs.value.span,
        )
    if config.method == "pathlevel":
        if not any(graph[n].get("block") for n in graph.walk()):
            raise SpecError(
                "the path-level controller acts on a cell, and this model uses no block",
                decl.method.span,
                hint="put the part to transform in a block (block cell(c) { ... }) and use it in the model",
            )
        if (bound := broken(graph, ceilings(config.options["where"]))) is not None:
            raise SpecError(
                f"the base net breaks the bound `where: {bound.text}`, and path-level edits never make a "
                "net smaller, so no child could satisfy it",
                decl.method.keywords["where"].span,
                hint="loosen the bound, or start from a smaller model",
            )
    elif not positions(graph) and not hypers:
        raise SpecError(
            "this model has nothing to search: no choice, no set of values, no range, no open train setting",
            decl.span,
            hint="give the model a choice { ... | ... }, a set such as k: {3, 5}, or a range such as 8..64,"
            " or the train block a setting such as lr: log(1e-4..1e-1)",
        )
    val = data.keywords.get("val") if data is not None else None
    if not isinstance(val, Num) or val.value <= 0:
        raise SpecError(
            "a search ranks its members on a validation split, and the data holds none out",
            val.span if val is not None else (data or decl).span,
            expected=f"data {data.name if data else 'digits'}(..., val: 0.1)",
        )
