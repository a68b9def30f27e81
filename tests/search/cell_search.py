"""The small path-level search the search tests share: two cells of 12 units on digits, the
`pathlevel(...)` options and the device given by each test."""

from __future__ import annotations

CELL_SEARCH = """\
data digits(test: 0.2, val: 0.15)
block cell(c) {{
    linear(c) bn relu
    branch add {{ linear(c) | identity }}
}}
model m {{ flatten linear(12) relu cell(12) as c1 cell(12) as c2 linear(classes) }}
train {{ epochs 1 batch 128 optimizer adam(lr: 3e-3) seed 4{device} }}
search pathlevel({options})
"""


def cell_search(options: str, device: str | None = None) -> str:
    """The spec's text with `options` in its search line and `device` (if any) in its train block."""
    return CELL_SEARCH.format(options=options, device=f" device {device}" if device else "")
