"""The `growdsl` command line: a thin layer over `growdsl.api`.

User mistakes arrive here as `GrowDSLError`s and leave as a rendered message on stderr with exit
code 2; this is the only place that prints errors or exits.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from growdsl import strict_json
from growdsl.errors import GrowDSLError
from growdsl.export.formats import FORMATS, RETIRED
from growdsl.run.cpus import usable_cpus

SET_HELP = "Override a setting, validated like the spec: train.epochs=5, data.test=0.3 (repeatable)."
PLUGIN_HELP = (
    "A plugin providing ops or data sets: a module name (mypkg.ops) or a .py file (repeatable); "
    "loaded only when the spec names something growdsl does not know (docs/plugins.md)."
)


def plugin_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--plugin REF` (repeatable): the plugins are enabled, not imported (growdsl/plugins.py), so
    the command stays fast until the spec names one of their ops or data sets."""

    def enable(ctx: click.Context, param: click.Parameter, refs: tuple[str, ...]) -> tuple[str, ...]:
        from growdsl import plugins

        try:
            plugins.enable(refs)
        except GrowDSLError as e:  # an empty name: click reports it as a bad option, exit code 2
            raise click.BadParameter(str(e)) from None
        return refs

    return click.option(
        "--plugin",
        "plugin_refs",
        multiple=True,
        metavar="MODULE",
        help=PLUGIN_HELP,
        callback=enable,
        expose_value=False,
        is_eager=True,
    )(command)


NPROC = click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Train on this many processes (DDP through torch's launcher; docs/distributed.md).",
)


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Render growdsl's errors without a traceback and exit with their code (2)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GrowDSLError as e:
            click.echo(e.render(), err=True)
            sys.exit(e.exit_code)
        except BrokenPipeError:  # the reader went away (`growdsl show SPEC | head`): no message,
            # exit 1 as rich does for its own output (and the Python docs' recipe)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
            sys.exit(1)
        except OSError as e:  # a file the user named cannot be written (a missing folder, a full disk)
            click.echo(f"error: {e.filename or ''}: {e.strerror or e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


@click.group()
@click.version_option(package_name="growdsl")
def main() -> None:
    """growdsl: write a search space and a growth policy in a .grow spec; growdsl builds,
    trains and grows the network."""


def diagnostic(error: GrowDSLError, spec: Path) -> dict[str, Any]:
    """One error as an editor reads it (docs/editors.md): where (1-based line and column, the end
    when known; None where the mistake has no place in the spec, e.g. a missing data file), the
    message, and what was expected and how to fix it when growdsl knows."""
    span = getattr(error, "span", None)
    return {
        "file": span.file if span else str(spec),
        "line": span.line if span else None,
        "col": span.col if span else None,
        "end_line": span.end_line if span else None,
        "end_col": span.end_col if span else None,
        "severity": "error",
        "message": getattr(error, "message", str(error)),
        "expected": getattr(error, "expected", None),
        "hint": getattr(error, "hint", None),
    }


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    help="json: a JSON list of diagnostics on stdout, for editors ([] when the spec is fine).",
)
@plugin_option
@_user_errors
def check(spec: Path, overrides: tuple[str, ...], output: str) -> None:
    """Parse, lower and shape-check SPEC; print a one-line summary (and a search's placement)."""
    from growdsl import api

    if output == "text":
        result = api.check_file(spec, list(overrides))
        click.echo(result.summary())
        if result.placement() is not None:  # a search: how many members at once, where
            click.echo(result.placement())
        return
    try:
        api.check_file(spec, list(overrides))
    except GrowDSLError as e:  # the same exit code as text output, the message as data
        click.echo(strict_json.dumps([diagnostic(e, spec)], indent=1))
        sys.exit(e.exit_code)
    click.echo("[]")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dot",
    "dot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the graph as Graphviz DOT to this file.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@plugin_option
@_user_errors
def show(spec: Path, dot_file: Path | None, overrides: tuple[str, ...]) -> None:
    """Print SPEC's model tree with shapes, params, FLOPs and growable ranges."""
    from growdsl import api
    from growdsl.export import write_atomically
    from growdsl.ir import costs, to_dot
    from growdsl.show import render_tree

    result = api.check_file(spec, list(overrides))
    node_costs = costs(result.graph)
    render_tree(result.graph, result.shapes, node_costs)
    click.echo(result.summary())
    if dot_file is not None:
        text = to_dot(result.graph, result.shapes, node_costs)
        write_atomically(dot_file, lambda p: p.write_text(text))
        click.echo(f"wrote {dot_file}")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-w", "--write", is_flag=True, help="Rewrite SPEC in place instead of printing.")
@click.option("--check", "check_only", is_flag=True, help="Exit 1 if SPEC is not in canonical form.")
@click.option("--drop-comments", is_flag=True, help="Leave the comments out of what is printed or written.")
@_user_errors
def fmt(spec: Path, write: bool, check_only: bool, drop_comments: bool) -> None:
    """Print SPEC in canonical form (idempotent; lowers to the same graph; comments are kept)."""
    from growdsl import api

    text, changed = api.format_file(spec, write=write and not check_only, drop_comments=drop_comments)
    if check_only:
        if changed:
            click.echo(f"{spec}: not in canonical form", err=True)
            sys.exit(1)
    elif write:
        if changed:
            click.echo(f"formatted {spec}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default runs/<model>-<time>/); refused if it exists and is not empty.",
)
@click.option("--force", is_flag=True, help="Allow a non-empty --out (files a run writes are replaced).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--device", help="cpu, cuda, cuda:N or auto (overrides train.device).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--tensorboard",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write TensorBoard logs to this folder as the run goes (needs growdsl[tensorboard]).",
)
@plugin_option
@NPROC
@_user_errors
def run(
    spec: Path,
    out: Path | None,
    force: bool,
    overrides: tuple[str, ...],
    device: str | None,
    quiet: bool,
    tensorboard: Path | None,
    nproc: int,
) -> None:
    """Train (and grow) the network of SPEC; write the run directory."""
    from growdsl import api

    spec_ = api.load(spec, list(overrides))
    if _launch(nproc, spec_):
        return
    result = api.run_spec(spec_, out=out, device=device, quiet=quiet, force=force, tensorboard=tensorboard)
    _summary(result)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--device", help="cpu, cuda, cuda:N or auto (default: the device the run used).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@NPROC
@_user_errors
def resume(run_dir: Path, device: str | None, quiet: bool, nproc: int) -> None:
    """Continue an interrupted run from RUN_DIR/checkpoint.pt."""
    from growdsl import api

    if nproc > 1:
        from growdsl.search.driver import is_search_dir

        if _launch(nproc, searches=is_search_dir(run_dir)):
            return
    result = api.resume_run(run_dir, device=device, quiet=quiet)
    _summary(result)


def _launch(nproc: int, spec: Any = None, searches: bool = False) -> bool:
    """With `--nproc N` > 1: run this command on N processes through torch's launcher
    (docs/distributed.md) and return True once they are done."""
    if nproc == 1:
        return False
    from growdsl.errors import RunError
    from growdsl.run import distributed

    if distributed.launched():
        raise RunError("--nproc inside a process torch's launcher started: give one or the other")
    if searches or (spec is not None and spec.search is not None):
        raise RunError("--nproc runs one net on several processes; a search's members run on its backend")
    distributed.launch(nproc, distributed.main_argv())
    return True


def _summary(result: Any) -> None:
    """The one line a run prints, by rank 0 only under torch's launcher."""
    from growdsl.run import distributed

    if distributed.rank0_process():
        click.echo(result.summary())


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "formats",
    multiple=True,
    required=True,
    type=click.Choice([*FORMATS, *RETIRED]),  # a retired format gets its own message, not click's
    help="Format to write (repeatable): pt2 is torch.export's, onnx needs growdsl[onnx].",
)
@_user_errors
def export(run_dir: Path, formats: tuple[str, ...]) -> None:
    """Write a finished run's graph and weights in more formats, into RUN_DIR."""
    from growdsl import api

    for path in api.export_run(run_dir, formats):
        click.echo(f"wrote {path}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--replay",
    is_flag=True,
    help="Rebuild the graph from spec.grow and the logged edits; exit 1 if it differs from graph.json.",
)
@_user_errors
def history(run_dir: Path, replay: bool) -> None:
    """List the growth steps of the run in RUN_DIR (one line per edit), or check that they replay."""
    from growdsl import api

    if replay:
        difference = api.replay_difference(run_dir)
        if difference is not None:
            click.echo(f"{run_dir}: the replayed graph differs from graph.json: {difference}", err=True)
            sys.exit(1)
        click.echo(f"{run_dir}: replaying the logged edits over spec.grow gives graph.json")
        return
    for line in api.growth_lines(run_dir):
        click.echo(line)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@_user_errors
def report(run_dir: Path) -> None:
    """Rebuild RUN_DIR's report (report.html, report.png, architecture.png) from its history."""
    from growdsl import api

    for path in api.report_run(run_dir):
        click.echo(f"wrote {path}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the runs' curves overlaid (accuracy or loss, training loss, params) to this PNG.",
)
@_user_errors
def compare(run_dirs: tuple[Path, ...], plot: Path | None) -> None:
    """A table of several runs: final accuracy, size, growth steps, training time."""
    from growdsl import api

    click.echo(api.compare_runs(list(run_dirs), plot))
    if plot is not None:
        click.echo(f"wrote {plot}")


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seeds", type=click.IntRange(1), default=5, show_default=True, help="Seeds per arm, paired.")
@click.option(
    "--widths", type=click.IntRange(1), default=4, show_default=True, help="Uniform widths in the sweep."
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=usable_cpus,
    help="Worker processes (default: the cores this process may use); the cores are shared among them.",
)
@click.option(
    "--json",
    "json_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every arm's numbers here.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw test score against compute to this PNG.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--quiet", is_flag=True, help="No line per finished training.")
@plugin_option
@_user_errors
def payoff(
    spec: Path,
    seeds: int,
    widths: int,
    workers: int,
    json_file: Path | None,
    plot: Path | None,
    overrides: tuple[str, ...],
    quiet: bool,
) -> None:
    """Does growth pay off on SPEC's task? The grown net against its final net from scratch, uniform
    widths at its size, the start net and a width sweep, paired by seed, with training compute."""
    from growdsl import api
    from growdsl.export import write_atomically
    from growdsl.payoff import summary_lines

    progress = None if quiet else functools.partial(click.echo, err=True)
    result = api.payoff_spec(api.load(spec, list(overrides)), seeds=seeds, widths=widths, workers=workers,
                             progress=progress)  # fmt: skip
    click.echo("\n".join(summary_lines(result)))
    if json_file is not None:
        text = strict_json.dumps(result.to_json(), indent=1)
        write_atomically(json_file, lambda p: p.write_text(text + "\n"))
        click.echo(f"wrote {json_file}")
    if plot is not None:
        from growdsl.payoff.plot import save_payoff_plot

        save_payoff_plot(result, plot)
        click.echo(f"wrote {plot}")


if __name__ == "__main__":
    main()
