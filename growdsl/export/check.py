"""`growdsl check` validates the `export [...]` section, so a run never trains for an hour and
then fails on a format name: every name must be in `FORMATS` (growdsl/export/formats.py, the one
table of what `write_exports` can write)."""

from __future__ import annotations

from growdsl.errors import SpecError
from growdsl.export.formats import FORMATS
from growdsl.lang.ast import ExportDecl
from growdsl.lang.suggest import unknown_name_message


def check_export(decl: ExportDecl | None) -> None:
    """Raise a SpecError at the first format name `write_exports` does not know."""
    for name in decl.formats if decl is not None else ():
        if name.id not in FORMATS:
            raise SpecError(unknown_name_message("export format", name.id, FORMATS), name.span)
