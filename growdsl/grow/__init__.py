"""Growth: transforms that rewrite a trained network's graph and carry its weights over.

`policy.py` decides when and how far to grow and picks among the candidates of the transforms
(`transform.py` is their protocol, `registry.py` the table of those a grow block may name);
`step.py` is the one growth step every transform shares; `surgery.py` the one weight carry across
any edit (`growdsl.ir.edits`); `carry.py` carries the optimizer over; `net.py` holds a graph with
its compiled module. The methods (`split.py` + `splitting/`, `firefly/`, `pathlevel/`, the
baselines `gradmax.py` and `tiny.py` over `newneurons/`, `net2wider.py`, `net2deeper.py`) register
themselves when imported, which `registry.transform_factory` does the first time a grow block
names one.
"""

from growdsl.grow.net import Net, rebuild
from growdsl.grow.policy import GrowthPolicy, check_grow
from growdsl.grow.registry import (
    IMPLEMENTED_TRANSFORMS,
    KNOWN_TRANSFORMS,
    register_transform,
    transform_factory,
)
from growdsl.grow.step import Applied, apply_chosen, grow_step
from growdsl.grow.surgery import Carry, carry
from growdsl.grow.transform import Candidate, Transform

__all__ = [
    "IMPLEMENTED_TRANSFORMS",
    "KNOWN_TRANSFORMS",
    "Applied",
    "Candidate",
    "Carry",
    "GrowthPolicy",
    "Net",
    "Transform",
    "apply_chosen",
    "carry",
    "check_grow",
    "grow_step",
    "rebuild",
    "register_transform",
    "transform_factory",
]
