"""Growth: transforms that rewrite a trained network's graph and carry its weights over.

`policy.py` decides when and how far to grow and picks among the candidates of the transforms
(`transform.py` is their protocol); `surgery.py` is the weight surgery they share; `carry.py`
carries the optimizer over; `net.py` holds a graph with its compiled module.
"""

from growdsl.grow.net import Net, rebuild
from growdsl.grow.policy import IMPLEMENTED_TRANSFORMS, KNOWN_TRANSFORMS, GrowthPolicy, check_grow
from growdsl.grow.transform import Applied, Candidate, Transform

__all__ = [
    "IMPLEMENTED_TRANSFORMS",
    "KNOWN_TRANSFORMS",
    "Applied",
    "Candidate",
    "GrowthPolicy",
    "Net",
    "Transform",
    "check_grow",
    "rebuild",
]
