"""The papers' networks in specs/zoo/ against hand-written torch modules of the same architecture.

Each fixed net must report the published parameter count (VGG-19-BN 20.04M, ResNet-20 0.27M,
ResNet-56 0.85M, MobileNetV1 for CIFAR 3.2M), and compute what the hand-written module computes
given the same weights: a reference written from the papers' descriptions, independently of the
spec, so a wrong stride, a missing BN or a shortcut of the wrong kind shows up as a different output.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import growdsl
from growdsl.errors import DataError
from growdsl.ir.cost import param_count
from growdsl.run.loading import weights_by_order

ZOO = Path(__file__).parents[2] / "specs" / "zoo"


class BasicBlock(nn.Module):
    """He et al.'s CIFAR basic block; the shortcut subsamples by 2 and appends zero channels where
    the channels double (their option A)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x[:, :, :: self.stride, :: self.stride]
        shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    def __init__(self, n: int, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout in (16, 32, 64):
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if i == 0 and cout != 16 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def vgg19_bn(classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    for cout, n in ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)):
        for _ in range(n):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, classes))


def mobilenetv1(classes: int = 10) -> nn.Module:
    def conv_bn(cin: int, cout: int, k: int, stride: int, groups: int) -> list[nn.Module]:
        conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        return [conv, nn.BatchNorm2d(cout), nn.ReLU()]

    layers = conv_bn(3, 32, 3, 1, 1)
    cin = 32
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5
    for cout, stride in plan + [(1024, 2), (1024, 1)]:
        layers += conv_bn(cin, cin, 3, stride, cin) + conv_bn(cin, cout, 1, 1, 1)
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, classes))


NETS = {
    "vgg19_cifar.grow": (vgg19_bn, 20_040_522, "20.04M"),
    "resnet20_cifar.grow": (lambda: CifarResNet(3), 269_722, "0.27M"),
    "resnet56_cifar.grow": (lambda: CifarResNet(9), 853_018, "0.85M"),
    "mobilenetv1_cifar.grow": (mobilenetv1, 3_217_226, "3.2M"),
}


def _published(count: int, text: str) -> bool:
    """`count` rounds to the paper's figure (given to its own number of digits)."""
    digits = len(text.rstrip("M").split(".")[1]) if "." in text else 0
    return round(count / 1e6, digits) == float(text.rstrip("M"))


@pytest.mark.parametrize("name", sorted(NETS))
def test_zoo_net_has_the_published_parameter_count(name):
    reference, count, published = NETS[name]
    graph = growdsl.lower(growdsl.load(ZOO / name))
    assert param_count(graph) == count == sum(p.numel() for p in reference().parameters())
    assert _published(count, published)


@pytest.mark.parametrize("name", sorted(NETS))
def test_zoo_net_computes_what_the_hand_written_module_computes(name):
    torch.manual_seed(0)
    reference = NETS[name][0]()
    for module in reference.modules():  # non-trivial statistics, so BN placement matters
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    model = growdsl.build_model(growdsl.lower(growdsl.load(ZOO / name)))
    model.load_state_dict(weights_by_order(model, reference.state_dict()))
    model.eval(), reference.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


GROWTH_SETUPS = ["split_mobilenetv1_cifar.grow", "firefly_vgg19_cifar.grow"]


@pytest.mark.parametrize("name", sorted(NETS) + GROWTH_SETUPS)
def test_zoo_spec_without_the_cifar_files_says_where_to_put_them(name, tmp_path):
    """`check` needs no data files; `run` stops before training with the folder to fill."""
    growdsl.check_file(ZOO / name)
    spec = growdsl.load(ZOO / name, [f'data.root="{tmp_path}"'])
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        growdsl.run_spec(spec, out=tmp_path / "run", quiet=True)


def _cifar_shaped_folder(root: Path, per_class: int = 8) -> None:
    """Random 32x32 RGB PNGs in two class folders: CIFAR's shape, not its content."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")


@pytest.mark.parametrize("name", GROWTH_SETUPS)
def test_zoo_growth_setup_grows_its_net_one_round(name, tmp_path):
    """The papers' set-ups as shipped, on generated CIFAR-shaped images, shortened to two epochs
    with the first growth round after the first: the net grows and stays within its ranges."""
    text = (ZOO / name).read_text()
    folder = f'data folder(root: "{tmp_path / "images"}", size: [32, 32], val: 0.25)'
    text = re.sub(r"data cifar10\(.*\)", folder, text)
    text = re.sub(r"at epochs \[[0-9, ]*\]", "at epochs [1]", text)
    text = text.replace("epochs 160", "epochs 2").replace("batch 128", "batch 8")
    spec_file = tmp_path / name
    spec_file.write_text(text)
    _cifar_shaped_folder(tmp_path / "images")
    start = growdsl.check_file(spec_file).params
    result = growdsl.run_spec(growdsl.load(spec_file), out=tmp_path / "run", quiet=True)
    grown = [line for line in result.history if line.get("event") == "grow"]
    assert grown and all(line["epoch"] == 1 for line in grown)
    assert result.final_metrics["params"] > start
