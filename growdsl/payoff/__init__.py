"""`growdsl payoff`: the grown net against its alternatives on the user's own task, paired by
seed (growdsl/payoff/measure.py)."""

from growdsl.payoff.measure import ARMS, Payoff, payoff, summary_lines

__all__ = ["ARMS", "Payoff", "payoff", "summary_lines"]
