"""Task sequences (`data digits(tasks: split(5))`): how the classes split, what `describe` binds,
the spec errors, and a run over the tasks (per-task heads, history, average accuracy, resume)."""

from __future__ import annotations

import re

import pytest
import torch
from sklearn.datasets import load_digits

from growdsl.errors import SpecError
from growdsl.lang import parse_text
from growdsl.run import datasets, resume, run

TASKS = """\
data digits(tasks: split(5), test: 0.25)
model m {{ flatten linear(16) as h1 relu linear(classes) }}
train {{ epochs 2 batch 64 optimizer {optimizer} seed 5 device cpu }}
"""
SGD = "sgd(lr: 0.05, momentum: 0.9, weight_decay: 0.01)"


def _data(text: str):
    return parse_text(text + "\nmodel m { flatten linear(classes) }\n", "test.grow").data


def _untimed(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


def test_split_5_puts_digits_classes_in_order_two_per_task():
    tasks = datasets.load_tasks(_data("data digits(tasks: split(5))"), seed=0)
    counts = torch.bincount(torch.as_tensor(load_digits().target), minlength=10)
    assert len(tasks) == 5
    for t, task in enumerate(tasks):
        labels = torch.cat([task.train[1], task.test[1]])
        assert set(labels.tolist()) == {0, 1}  # renumbered within the task
        assert len(labels) == counts[2 * t] + counts[2 * t + 1]
        assert len(task.test[1]) == round(0.2 * len(labels))  # `test` applies within the task


def test_task_splits_are_deterministic_per_seed():
    call = _data("data digits(tasks: split(5))")
    a, b = datasets.load_tasks(call, seed=3), datasets.load_tasks(call, seed=3)
    other = datasets.load_tasks(call, seed=4)
    assert all(torch.equal(x.train[0][:], y.train[0][:]) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0].train[0][:], other[0].train[0][:])


def test_describe_binds_all_classes_and_the_input_shape():
    info = datasets.describe(_data("data digits(tasks: split(5))"))
    assert (info.input_shape, info.classes, info.tasks.count) == ((1, 8, 8), 10, 5)
    assert info.tasks.groups(10)[3] == [6, 7]


@pytest.mark.parametrize(
    ("data", "message", "column"),
    [
        ("data digits(tasks: split(3))", "10 classes do not split into 3 tasks", 20),
        ("data digits(tasks: splt(5))", "did you mean 'split'", 20),
        ("data digits(tasks: split(1))", "bad value 1 for the number of tasks", 26),
        ("data digits(tasks: 5)", "bad value 5 for data option 'tasks'", 20),
        ("data digits(tasks: split(n: 5))", "split takes one number", 20),
        ("data wave(tasks: split(2))", "need a classification data set", 18),
        ("data spirals(classes: 3, tasks: split(2))", "3 classes do not split into 2", 33),
        ("data digits(tasks: split(10))", "10 classes in 10 tasks leave a task fewer than 2", 20),
        ("data spirals(classes: 3, tasks: split(3))", "leave a task fewer than 2 classes", 33),
    ],
)
def test_bad_task_specs_are_spec_errors_at_their_place(data, message, column):
    with pytest.raises(SpecError, match=message) as err:
        datasets.describe(_data(data))
    assert (err.value.span.line, err.value.span.col) == (1, column)


def test_a_run_trains_each_task_on_its_head_and_reports_the_average_accuracy(tmp_path):
    result = run(parse_text(TASKS.format(optimizer=SGD), "t.grow"), tmp_path / "r", quiet=True)
    starts = [r for r in result.history if r["event"] == "task"]
    assert [(r["task"], r["epoch"], r["classes"]) for r in starts] == [
        (t, 2 * t, [2 * t, 2 * t + 1]) for t in range(5)
    ]
    assert starts[2]["frozen"] == {"m.h1": 16, "m.3": 4}  # all hidden neurons, the two old heads
    epochs = [r for r in result.history if r["event"] == "epoch"]
    assert [r["task"] for r in epochs] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    done = result.history[-1]
    assert done["event"] == "tasks_done" and len(done["accs"]) == 5
    assert done["avg_acc"] == round(sum(done["accs"]) / 5, 6)  # rounded like accs
    assert result.final_metrics["avg_acc"] == done["avg_acc"] and done["avg_acc"] > 0.6
    assert "average acc over 5 tasks" in result.summary()


def test_old_tasks_accuracy_is_unchanged_by_later_tasks_without_growth(tmp_path):
    """A task's accuracy at its last epoch (held out = its test split) equals its accuracy at the
    very end, after every later task trained: momentum and weight decay included."""
    for name, optimizer in (("sgd", SGD), ("adamw", "adamw(lr: 0.01, weight_decay: 0.1)")):
        result = run(parse_text(TASKS.format(optimizer=optimizer), "t.grow"), tmp_path / name, quiet=True)
        last = {r["task"]: r["acc"] for r in result.history if r["event"] == "epoch"}
        assert [last[t] for t in range(5)] == result.history[-1]["accs"]


@pytest.mark.parametrize("cut", [3, 4])  # inside task 1, and at the boundary of tasks 1 and 2
def test_resume_mid_sequence_reproduces_the_uninterrupted_run(tmp_path, cut):
    spec = parse_text(TASKS.format(optimizer=SGD), "t.grow")
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "cut", quiet=True, epochs_limit=cut)
    resumed = resume(tmp_path / "cut", quiet=True)
    assert _untimed(resumed.history) == _untimed(whole.history)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_progress_bar_counts_epochs_over_all_tasks(tmp_path, monkeypatch, capsys):
    """The bar is shown only on a terminal; forced on here, rich prints its last state per task."""
    import growdsl.run.single

    monkeypatch.setattr(growdsl.run.single, "progress_enabled", lambda quiet: True)
    run(parse_text(TASKS.format(optimizer=SGD), "t.grow"), tmp_path / "r")
    shown = re.findall(r"epoch (\d+)/(\d+)", capsys.readouterr().out)
    assert shown == [(str(e), "10") for e in (2, 4, 6, 8, 10)]
