"""The grammar of `.grow`, shipped as package data (see grammars/growdsl.lark)."""
