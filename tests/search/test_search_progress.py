"""The live table of a search stays short however many trials a round has: the members in
training and the last finished ones, the others counted in its caption."""

from __future__ import annotations

from growdsl.search.progress import ROWS, SearchProgress


def test_a_round_of_many_trials_shows_those_in_training_and_the_last_finished_ones():
    with SearchProgress(True, 1) as progress:
        progress.start_round(1)
        for member in range(100):
            progress.job_started(member, "linear8")
        for member in range(98):
            progress.member_done(member, 4, 0.5 + member / 1000)
        table = progress._table()
    shown = [int(cell) for cell in table.columns[0]._cells]
    assert shown == list(range(98 - ROWS, 100))  # the last ROWS finished, then 98 and 99 in training
    assert table.caption == f"and {98 - ROWS} more finished"
