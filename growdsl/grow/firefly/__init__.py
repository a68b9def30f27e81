"""Firefly descent (docs/methods/firefly.md): growing wider by new neurons and splits, and deeper by
new layers, each candidate scored by its first-order loss decrease in one augmented pass
(`augment`), selected greedily by the growth policy and applied by `transform`."""

from growdsl.grow.firefly.transform import FIREFLY_OPTIONS, FireflyTransform

__all__ = ["FIREFLY_OPTIONS", "FireflyTransform"]
