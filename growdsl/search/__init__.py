"""Searches: random search, PBT-NAS (mixing good networks with shrink-perturb, and its mutation
baseline) and the path-level meta-controller, on a local process pool or on Ray.

`driver.py` (the one search loop: run directory, state, backend, progress, resume, finish),
`protocol.py` (the `Search` protocol every method implements), `registry.py` (methods by name),
`methods.py` (the `search` declaration), `placement.py` (how many members at once, on which
device), `backends.py` (where members train), `progress.py`;
`population.py` (random search and PBT-NAS) with `space.py` (positions, draws, mixing, mutation:
graph functions), `pbt.py` (exploit decisions), `inherit.py` (what a child inherits);
`pathlevel.py` (the path-level method) with `controller.py` (the tree-LSTM and its actors),
`decisions.py` (decisions as path-level edits). docs/search.md is the user's reference;
docs/methods/pbt_nas.md and docs/methods/pathlevel.md the methods.
"""

from growdsl.search.methods import KNOWN_SEARCHES, SearchConfig, check_search, search_config

__all__ = ["KNOWN_SEARCHES", "SearchConfig", "check_search", "search_config"]
