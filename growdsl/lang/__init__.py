"""The `.grow` language front end: text to `Spec` (parse), `Spec` to text (fmt), `--set` overrides."""

from growdsl.lang.ast import (
    Arg,
    AtEpochs,
    BlockDef,
    BranchTerm,
    Call,
    ChoiceTerm,
    Compare,
    Every,
    ExportDecl,
    GrowBlock,
    GrowStmt,
    ListValue,
    ModelDecl,
    Name,
    Num,
    OpTerm,
    Param,
    Range,
    RepeatTerm,
    SearchDecl,
    SeqTerm,
    Setting,
    SetValue,
    Spec,
    Str,
    Term,
    TrainBlock,
    TransformStmt,
    Until,
    Value,
    When,
)
from growdsl.lang.format import format_spec
from growdsl.lang.overrides import apply_overrides
from growdsl.lang.parser import MAX_SPEC_BYTES, load, parse_text, parse_value, read_spec_file

__all__ = [
    "Arg", "AtEpochs", "BlockDef", "BranchTerm", "Call", "ChoiceTerm", "Compare", "Every", "ExportDecl",
    "GrowBlock", "GrowStmt", "ListValue", "ModelDecl", "Name", "Num", "OpTerm", "Param", "Range",
    "RepeatTerm", "SearchDecl", "SeqTerm", "SetValue", "Setting", "Spec", "Str", "Term",
    "TrainBlock", "TransformStmt", "Until", "Value", "When",
    "MAX_SPEC_BYTES", "apply_overrides", "format_spec", "load", "parse_text", "parse_value", "read_spec_file",
]  # fmt: skip
