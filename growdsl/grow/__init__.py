"""Growth transforms (splitting, firefly, path-level) and the policy that schedules them.

This version implements none of the methods yet; `check_grow` makes a spec that asks for one fail
at `check` with a message naming it, instead of silently training without growth.
"""

from growdsl.grow.policy import KNOWN_TRANSFORMS, check_grow

__all__ = ["KNOWN_TRANSFORMS", "check_grow"]
