"""The files docs/plugins.md shows, for the tests that run its worked example."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "plugins.md"


def doc_files() -> dict[str, str]:
    """The files docs/plugins.md shows: each code block whose first line is `# NAME.py` or `# NAME.grow`."""
    found = {}
    for body in re.findall(r"```\w+\n(.*?)```", DOC.read_text(), re.S):
        first = re.match(r"# (\S+\.(?:py|grow))\n", body)
        if first:
            found[first.group(1)] = body
    return found
