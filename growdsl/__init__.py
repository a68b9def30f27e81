"""growdsl: a declarative architecture-search DSL and compiler for PyTorch."""

__version__ = "0.1.0"
