"""Population and controller searches (random, PBT-NAS, path-level); not implemented yet.

`check_search` makes a spec with a `search` block fail at `check`, naming the method.
"""

from growdsl.search.methods import KNOWN_SEARCHES, check_search

__all__ = ["KNOWN_SEARCHES", "check_search"]
