"""The data catalog: shapes and classes agree with what loads, splits are seeded, errors are precise."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from growdsl.errors import DataError, SpecError
from growdsl.lang import parse_text
from growdsl.lang.ast import Call
from growdsl.run.datasets import CATALOG, describe, load_data


def data_call(text: str) -> Call:
    """The `data` call of a one-line spec, with real spans."""
    return parse_text(f"data {text}\nmodel m {{ flatten linear(2) }}\n", "d.grow").data


IN_PROCESS = ["digits", "spirals(n: 300)", "moons(n: 300)", "circles(n: 300)",
              "blobs(n: 300, classes: 4, dim: 5)", "wave(n: 300)"]  # fmt: skip


@pytest.mark.parametrize("text", IN_PROCESS)
def test_in_process_set_loads_with_the_shape_and_classes_describe_promises(text):
    call = data_call(text)
    info = describe(call)
    splits = load_data(call, seed=0)
    x, y = splits.train
    assert tuple(x.shape[1:]) == info.input_shape
    assert x.dtype == torch.float32
    if info.classes is None:
        assert y.is_floating_point() and y.shape == (len(x), 1)
    else:
        assert y.dtype == torch.long
        assert set(y.tolist()) == set(range(info.classes))
    assert len(splits.test[0]) == round(0.2 * (len(x) + len(splits.test[0])))
    assert splits.val is None


def test_default_data_is_digits_with_its_documented_shape():
    info = describe(None)
    assert (info.name, info.input_shape, info.classes) == ("digits", (1, 8, 8), 10)


def test_blobs_shape_follows_its_options():
    assert describe(data_call("blobs(classes: 5, dim: 7)")).input_shape == (7,)
    assert describe(data_call("blobs(classes: 5, dim: 7)")).classes == 5


def test_same_seed_gives_the_same_splits_and_another_seed_other_splits():
    call = data_call("spirals(n: 300, val: 0.1)")
    a, b, c = load_data(call, 3), load_data(call, 3), load_data(call, 4)
    for split in ("train", "test", "val"):
        assert torch.equal(getattr(a, split)[0], getattr(b, split)[0])
        assert torch.equal(getattr(a, split)[1], getattr(b, split)[1])
    assert not torch.equal(a.train[0], c.train[0])


def test_val_is_a_fraction_of_the_whole_set_taken_from_the_training_part():
    splits = load_data(data_call("digits(test: 0.2, val: 0.1, normalize: false)"), seed=0)
    sizes = [len(splits.train[0]), len(splits.test[0]), len(splits.val[0])]
    assert sum(sizes) == 1797
    assert sizes[1] == round(0.2 * 1797) and abs(sizes[2] - 0.1 * 1797) <= 1


def test_digits_without_normalize_is_scaled_to_unit_interval():
    x = load_data(data_call("digits(normalize: false)"), 0).train[0][:]
    assert x.min() == 0.0 and x.max() == 1.0


def test_normalize_standardizes_each_channel_with_training_statistics():
    splits = load_data(data_call("blobs(n: 500, dim: 3)"), 0)
    x = splits.train[0]
    assert torch.allclose(x.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(0), torch.ones(3), atol=1e-4)


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        describe(data_call(text))
    return info.value


def test_unknown_data_set_suggests_the_nearest_at_its_span():
    err = _error("spirls(n: 10)")
    assert "unknown data set 'spirls': did you mean 'spirals'?" in str(err)
    assert (err.span.line, err.span.col) == (1, 6)


def test_unknown_option_suggests_the_nearest_at_its_span():
    err = _error("spirals(turn: 3)")
    assert "unknown data option 'turn': did you mean 'turns'?" in str(err)
    assert err.span.col == 14


@pytest.mark.parametrize(
    "text, expected",
    [
        ("digits(test: 1.5)", "a number in (0.0, 1.0)"),
        ("digits(test: 0)", "a number in (0.0, 1.0)"),
        ("digits(normalize: 1)", "true or false"),
        ("spirals(n: 2.5)", "a whole number in [10, 100000000]"),
        ("spirals(classes: 1)", "a whole number >= 2"),
        ('folder(root: "x", size: [32])', "a list of 2 whole numbers >= 1"),
        ("csv(path: data)", "a quoted string"),
    ],
)
def test_bad_option_value_is_a_spec_error_at_the_value(text, expected):
    err = _error(text)
    assert "bad value" in str(err) and err.expected.startswith(expected)
    assert err.span.line == 1 and err.span.col > text.index("(")


def test_test_and_val_must_leave_training_data():
    assert "leave no training data" in str(_error("digits(test: 0.5, val: 0.5)"))


def test_positional_data_arguments_are_refused():
    assert "named options only" in str(_error("spirals(100)"))


def test_folder_and_csv_need_their_path():
    assert "needs the option 'root'" in str(_error("folder"))
    assert "needs the option 'path'" in str(_error('csv(target: "y")'))


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                                          ("cifar10", "cifar-10-batches-py")])  # fmt: skip
def test_missing_torchvision_files_name_the_folder_and_files_and_download_nothing(tmp_path, name, folder):
    call = data_call(f'{name}(root: "{tmp_path}")')
    assert describe(call).classes == 10  # describing needs no files
    with pytest.raises(DataError) as info:
        load_data(call, 0)
    message = str(info.value)
    assert str(tmp_path / folder) in message
    assert ("train-images-idx3-ubyte" if "mnist" in name else "data_batch_1") in message
    assert list(tmp_path.iterdir()) == []  # nothing fetched, no folder made


def _write_idx(path, array: np.ndarray) -> None:
    """The MNIST raw format: big-endian magic (type 0x08 = ubyte, ndim), dims, then the bytes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_local_mnist_in_raw_format_loads_with_its_own_test_split(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.randint(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    splits = load_data(data_call(f'mnist(root: "{tmp_path}", val: 0.2, normalize: false)'), 0)
    assert splits.train[0].shape == (24, 1, 28, 28) and len(splits.val[0]) == 6
    assert splits.test[0].shape == (10, 1, 28, 28)
    assert 0.0 <= splits.train[0][:].min() and splits.train[0][:].max() <= 1.0


@pytest.mark.parametrize("name, folder, files", [
    ("mnist", "MNIST/raw", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
    ("fashion_mnist", "FashionMNIST/raw", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
    ("cifar10", "cifar-10-batches-py", [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                                        "batches.meta"]),
])  # fmt: skip
@pytest.mark.parametrize("content", [b"<html>404 Not Found</html>\n", b""])
def test_malformed_torchvision_files_are_a_data_error_naming_the_folder_and_files(
    tmp_path, name, folder, files, content
):
    raw = tmp_path / folder
    raw.mkdir(parents=True)
    for f in files:
        (raw / f).write_bytes(content)
    with pytest.raises(DataError) as info:
        load_data(data_call(f'{name}(root: "{tmp_path}")'), 0)
    message = str(info.value)
    assert str(raw) in message and all(f in message for f in files)


def test_image_folder_loads_resized_images_with_classes_from_subfolders(tmp_path):
    from PIL import Image

    for label, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (20 + i, 10), colour).save(tmp_path / label / f"{i}.png")
    call = data_call(f'folder(root: "{tmp_path}", size: [8, 6], test: 0.2, normalize: false)')
    info = describe(call)
    assert info.input_shape == (3, 8, 6) and info.classes == 2
    splits = load_data(call, 0)
    x, y = splits.train
    assert x.shape == (8, 3, 8, 6) and len(splits.test[0]) == 2
    assert x.pixels.dtype == torch.uint8  # stored as read, standardized per batch
    red = x[y == 0]
    assert torch.allclose(red[:, 0], torch.ones_like(red[:, 0])) and red[:, 2].max() == 0


@pytest.mark.parametrize("channels", [0, 2, 4, 1.5])
def test_folder_channels_other_than_1_or_3_is_a_spec_error_at_the_value(tmp_path, channels):
    err = _error(f'folder(root: "{tmp_path}", channels: {channels})')
    assert "bad value" in str(err) and err.expected == "1 (grey) or 3 (RGB)"
    assert err.span.col == len(f'data folder(root: "{tmp_path}", channels: ') + 1


def test_grey_folder_loads_one_channel(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / label / f"{i}.png")
    call = data_call(f'folder(root: "{tmp_path}", size: [4, 4], channels: 1, normalize: false)')
    assert describe(call).input_shape == (1, 4, 4)
    assert load_data(call, 0).train[0].shape[1:] == (1, 4, 4)


@pytest.mark.parametrize("hidden_has_images", [True, False])
def test_hidden_subfolders_are_never_classes_so_labels_do_not_shift(tmp_path, hidden_has_images):
    from PIL import Image

    (tmp_path / ".ipynb_checkpoints").mkdir()
    if hidden_has_images:
        Image.new("RGB", (4, 4), (0, 255, 0)).save(tmp_path / ".ipynb_checkpoints" / "0.png")
    for label, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (4, 4), colour).save(tmp_path / label / f"{i}.png")
    call = data_call(f'folder(root: "{tmp_path}", size: [4, 4], test: 0.2, normalize: false)')
    assert describe(call).classes == 2
    splits = load_data(call, 0)
    x = torch.cat([splits.train[0][:], splits.test[0][:]])
    y = torch.cat([splits.train[1], splits.test[1]])
    assert len(y) == 10 and set(y.tolist()) == {0, 1}
    assert torch.equal(y, (x[:, 2, 0, 0] == 1).long())  # cat (red) is 0, dog (blue) is 1


def test_missing_image_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        describe(data_call(f'folder(root: "{tmp_path / "nope"}")'))


def test_csv_gives_features_and_classes_from_the_target_column(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["a,b,label,c"] + [f"{i},{i * 2},{['x', 'y', 'z'][i % 3]},{i % 4}" for i in range(20)]
    path.write_text("\n".join(rows) + "\n")
    call = data_call(f'csv(path: "{path}", test: 0.25, normalize: false)')
    info = describe(call)
    assert info.input_shape == (3,) and info.classes == 3
    splits = load_data(call, 0)
    x, y = splits.train
    assert x.shape == (15, 3) and set(y.tolist()) <= {0, 1, 2}
    # each row's label follows its features: label index = a mod 3
    assert torch.equal(y, (x[:, 0] % 3).long())


def test_csv_regression_target_is_float(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i * 0.5}\n" for i in range(12)))
    call = data_call(f'csv(path: "{path}", target: "y", regression: true)')
    assert describe(call).classes is None
    y = load_data(call, 0).train[1]
    assert y.is_floating_point() and y.shape[1] == 1


def test_csv_unknown_target_suggests_a_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("feature,label\n1,0\n2,1\n")
    with pytest.raises(DataError, match="no target column 'lable': did you mean 'label'"):
        describe(data_call(f'csv(path: "{path}", target: "lable")'))


def test_csv_non_numeric_feature_is_a_data_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("name,label\nann,0\nbob,1\ncy,0\ndee,1\neve,0\n")
    with pytest.raises(DataError, match="feature columns must be numeric"):
        load_data(data_call(f'csv(path: "{path}")'), 0)


def test_csv_with_a_utf8_bom_reads_the_first_column_name_without_it(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("label,a,b\n".encode("utf-8-sig") + b"x,1,2\ny,3,4\nx,5,6\ny,7,8\nx,9,0\n")
    call = data_call(f'csv(path: "{path}", target: "label")')
    assert describe(call).input_shape == (2,)
    assert load_data(call, 0).train[0].shape[1] == 2


@pytest.mark.parametrize(
    "text, line",
    [
        ("a,b,label\n1,2,x\n\n\n3,4,y,9\n", 5),  # blank lines count
        ('a,b,label\n1,2,"x\ny"\n3,4\n', 4),  # so does a quoted line break
    ],
)
def test_csv_field_count_error_names_the_real_line(tmp_path, text, line):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"t\.csv:{line}: \d fields"):
        describe(data_call(f'csv(path: "{path}")'))


def test_csv_non_numeric_feature_error_names_its_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label\n1,x\n\n2,y\nthree,x\n4,y\n")
    with pytest.raises(DataError, match="t.csv:5: feature columns must be numeric"):
        load_data(data_call(f'csv(path: "{path}")'), 0)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e400"])
def test_csv_non_finite_feature_is_a_data_error_naming_its_line(tmp_path, value):
    path = tmp_path / "t.csv"
    path.write_text(f"a,b,label\n1,2,x\n3,4,y\n\n5,{value},x\n7,8,y\n")
    with pytest.raises(DataError, match="t.csv:5: feature 'b' is not a finite number"):
        load_data(data_call(f'csv(path: "{path}")'), 0)


@pytest.mark.parametrize("value", ["nan", "inf", "1e400"])
def test_csv_non_finite_regression_target_is_a_data_error_naming_its_line(tmp_path, value):
    path = tmp_path / "t.csv"
    path.write_text(f"a,y\n1,0.5\n2,{value}\n3,1.5\n")
    call = data_call(f'csv(path: "{path}", target: "y", regression: true)')
    with pytest.raises(DataError, match="t.csv:3: regression target 'y' is not a finite number"):
        load_data(call, 0)


def test_csv_without_a_feature_column_is_a_data_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label\nx\ny\nx\ny\n")
    with pytest.raises(DataError, match="no feature column"):
        describe(data_call(f'csv(path: "{path}")'))


def test_every_catalog_entry_has_a_description():
    assert all(d.doc for d in CATALOG.values())


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("a,b,label\n1,2,x\n3,oops,y\n", "", "t.csv:3: feature columns must be numeric"),
        ("a,b,label\n1,inf,x\n", "", "t.csv:2: feature 'b' is not a finite number"),
        ("a,y\n1,2\n3,high\n", ', target: "y", regression: true', "t.csv:3: regression target 'y' must be"),
    ],
)
def test_check_catches_a_csv_column_of_the_wrong_type_in_the_first_rows(tmp_path, text, options, message):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        describe(data_call(f'csv(path: "{tmp_path / "t.csv"}"{options})'))


def test_a_folder_class_without_images_is_refused_naming_it(tmp_path):
    from PIL import Image

    (tmp_path / "cats" / "deep").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "cats" / "deep" / "a.png")  # found at any depth
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not an image")
    with pytest.raises(DataError, match="but notes holds none"):
        describe(data_call(f'folder(root: "{tmp_path}")'))
    (tmp_path / "notes" / "readme.txt").unlink()
    Image.new("RGB", (4, 4)).save(tmp_path / "notes" / "b.jpg")
    assert describe(data_call(f'folder(root: "{tmp_path}")')).classes == 2


def test_a_folder_set_rooted_at_the_file_system_root_is_refused_without_walking_it():
    with pytest.raises(DataError, match="is / the folder of one data set"):
        describe(data_call('folder(root: "/")'))


def test_every_built_in_data_set_and_each_of_its_options_is_in_the_language_docs():
    """Finding 14: `regression: true` and the blobs, circles, moons and wave sets were missing from
    docs/language.md, "Data". Each built-in set's name and each option it takes are named there."""
    from pathlib import Path

    from growdsl.run.datasets import BUILTIN_DATA

    docs = (Path(__file__).parents[2] / "docs" / "language.md").read_text()
    missing = [name for name in sorted(BUILTIN_DATA) if f"`{name}" not in docs]
    missing += [
        f"{name}({option})"
        for name in sorted(BUILTIN_DATA)
        for option in CATALOG[name].options
        if f"{option}:" not in docs and f"`{option}`" not in docs
    ]
    assert missing == []
