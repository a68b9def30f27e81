"""Path-level network transformation (Cai et al. 2018): `sites.py` says where each transform
applies and builds its edit (shared cells included), `inits.py` what its init sets, and
`transform.py` is the `pathlevel(...)` transform of a grow block (docs/methods/pathlevel.md)."""

from growdsl.grow.pathlevel.transform import PATHLEVEL_OPTIONS, PathLevelTransform

__all__ = ["PATHLEVEL_OPTIONS", "PathLevelTransform"]
