"""`augment: [...]`: each batched augmentation against a per-sample reference, determinism under a
seed, training batches only, and the errors `check` reports at their places."""

from __future__ import annotations

import pytest
import torch

from growdsl.errors import Span, SpecError
from growdsl.lang import parse_text
from growdsl.run.augment import Crop, Cutout, Flip
from growdsl.run.batches import eval_batches, training_batches
from growdsl.run.datasets import describe, load_data

SPAN = Span("t.grow", 1, 1)


def images(n: int = 16, c: int = 3, h: int = 8, w: int = 10) -> torch.Tensor:
    """uint8 images with distinct pixels (1..255 in each channel), so any move shows."""
    return (torch.arange(n * c * h * w) % 255 + 1).to(torch.uint8).view(n, c, h, w)


def test_crop_takes_each_sample_a_window_of_its_zero_padded_image():
    x, pad = images(), 3
    out = Crop(pad, SPAN)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    offsets = set()
    for i in range(len(x)):
        # the one window of the padded image this sample shows (a per-sample search as reference)
        windows = [
            (top, left)
            for top in range(2 * pad + 1)
            for left in range(2 * pad + 1)
            if torch.equal(padded[i, :, top : top + 8, left : left + 10], out[i])
        ]
        assert len(windows) == 1
        offsets.add(windows[0])
    assert len(offsets) > 4  # offsets are drawn per sample


def test_flip_mirrors_about_half_of_the_samples_left_right():
    x = images(n=400)
    out = Flip(SPAN)(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(out[i], x[i].flip(2)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 150 < sum(flipped) < 250


@pytest.mark.parametrize("size", [1, 4, 5, 8])
def test_cutout_zeroes_one_square_per_sample_clipped_at_the_borders(size):
    x = torch.rand(64, 3, 8, 10) + 1.0  # no zeros of its own
    out = Cutout(size, SPAN)(x, torch.Generator().manual_seed(1))
    clipped = 0
    for i in range(len(x)):
        zero = out[i] == 0
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])  # every channel
        assert torch.equal(out[i][~zero], x[i][~zero])
        rows = zero[0].any(1).nonzero().flatten()
        cols = zero[0].any(0).nonzero().flatten()
        assert len(rows) > 0
        # a full rectangle of consecutive rows and columns, at most size x size
        assert rows.tolist() == list(range(rows[0], rows[-1] + 1)) and len(rows) <= size
        assert cols.tolist() == list(range(cols[0], cols[-1] + 1)) and len(cols) <= size
        assert int(zero[0].sum()) == len(rows) * len(cols)
        clipped += len(rows) * len(cols) < size * size
    assert size == 1 or clipped > 0  # centres near a border are clipped


def test_same_generator_state_gives_the_same_augmented_batch():
    call = data_call("patterns(n: 64, size: [8, 8], augment: [crop(pad: 2), flip, cutout(size: 3)])")
    train = load_data(call, 0).train
    chunks = [torch.arange(32), torch.arange(32, len(train[0]))]
    one = list(training_batches(train, chunks, torch.Generator().manual_seed(5)))
    two = list(training_batches(train, chunks, torch.Generator().manual_seed(5)))
    other = list(training_batches(train, chunks, torch.Generator().manual_seed(6)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(one, two, strict=True))
    assert not torch.equal(one[0][0], other[0][0])


def test_augmentation_touches_training_batches_only():
    call = data_call("patterns(n: 100, size: [8, 8], val: 0.2, augment: [flip, cutout(size: 4)])")
    splits = load_data(call, 0)
    assert splits.train[0].augment is not None
    assert splits.test[0].augment is None and splits.val[0].augment is None
    x, y = splits.train
    augmented, labels = next(training_batches(splits.train, [torch.arange(len(x))], torch.Generator()))
    assert torch.equal(labels, y) and not torch.equal(augmented, x[:])
    (plain, _), *_ = eval_batches(splits.test, 1024)
    assert torch.equal(plain, splits.test[0][:])


def test_without_augment_training_batches_are_the_standardized_rows():
    splits = load_data(data_call("digits"), 0)
    x, y = splits.train
    idx = torch.randperm(len(x))[:50]
    (xb, yb), *_ = training_batches(splits.train, [idx], torch.Generator())
    assert torch.equal(xb, x[idx]) and torch.equal(yb, y[idx])
    assert abs(float(x[:].mean())) < 1e-4  # standardized with the training statistics


def data_call(text: str):
    return parse_text(f"data {text}\nmodel m {{ flatten linear(2) }}\n", "d.grow").data


def error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        describe(data_call(text))
    return info.value


@pytest.mark.parametrize(
    "text, message, col",
    [
        (
            "spirals(augment: [flip])",
            "augment applies to images, but 'spirals' gives inputs of shape [2]",
            23,
        ),
        ("digits(augment: [crop(pad: 8)])", "crop(pad: 8) is larger than the 8x8 image", 23),
        ("digits(augment: [flip, cutout(size: 9)])", "cutout(size: 9) is larger than the 8x8 image", 29),
        ("digits(augment: [flipp])", "unknown augmentation 'flipp': did you mean 'flip'?", 23),
        ("digits(augment: [cutout])", "augmentation 'cutout' needs the option 'size'", 23),
        ("digits(augment: [flip, flip])", "augmentation 'flip' is listed twice", 29),
    ],
)
def test_augmentation_mistakes_are_spec_errors_at_their_place(text, message, col):
    err = error(text)
    assert message in str(err)
    assert (err.span.line, err.span.col) == (1, col)


def test_augmenting_a_csv_is_a_spec_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label\n1,0\n2,1\n")
    err = error(f'csv(path: "{path}", augment: [flip])')
    assert "augment applies to images, but 'csv' gives inputs of shape [1]" in str(err)


AUGMENTED = """
data patterns(n: 160, size: [8, 8], val: 0.1, augment: [crop(pad: 2), flip, cutout(size: 4)])
model c { conv(6, k: 3) bn relu dropout(0.1) gap flatten linear(classes) }
train { epochs 3 batch 32 optimizer sgd(lr: 0.05, momentum: 0.9) schedule cosine seed 3 device cpu }
"""


def test_an_augmented_run_resumed_ends_bitwise_where_an_uninterrupted_one_does(tmp_path):
    from growdsl.run import resume, run

    path = tmp_path / "a.grow"
    path.write_text(AUGMENTED)
    spec = parse_text(AUGMENTED, str(path))
    whole = run(spec, tmp_path / "whole", quiet=True)
    run(spec, tmp_path / "stopped", epochs_limit=1, quiet=True)
    resumed = resume(tmp_path / "stopped", quiet=True)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    losses = [r["loss"] for r in whole.history if r["event"] == "epoch"]
    assert losses == [r["loss"] for r in resumed.history if r["event"] == "epoch"]
