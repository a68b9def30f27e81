"""Searches: random search, PBT-NAS (mixing good networks with shrink-perturb, and its mutation
baseline) and the path-level meta-controller, on a local process pool or on Ray.

`space.py` (positions, draws, mixing, mutation: graph functions), `pbt.py` (exploit decisions),
`inherit.py` (what a child inherits), `backends.py` (where members train), `driver.py` (the
search loop and its run directory), `methods.py` (the `search` declaration), `progress.py`;
for `pathlevel`: `controller.py` (the tree-LSTM and its actors), `decisions.py` (decisions as
path-level edits), `pathlevel.py` (the episodes). docs/search.md is the user's reference;
docs/methods/pbt_nas.md and docs/methods/pathlevel.md the methods.
"""

from growdsl.search.methods import KNOWN_SEARCHES, SearchConfig, check_search, search_config

__all__ = ["KNOWN_SEARCHES", "SearchConfig", "check_search", "search_config"]
