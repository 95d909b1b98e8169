"""The soak's RSS growth figure: memory kept raises the floor; a sample that lands mid-reply does not."""

from __future__ import annotations

import pytest

from edge_voice.bench.soak import rss_floor_growth

FLAT = [618.0, 617.5, 618.1, 618.3, 618.2, 618.4, 618.6, 618.9]


def test_spikes_at_both_ends_are_not_growth() -> None:
    spiky = [639.5, *FLAT, 682.4]  # the 1000-scene run's first and last samples landed mid-reply
    start, end, growth = rss_floor_growth(spiky)
    assert (start, end) == (618.0, 618.9)  # lowest of the first / last 2 (a quarter of 10, at least 2)
    assert growth == pytest.approx(0.15, abs=0.01)


def test_a_leak_raises_the_floor() -> None:
    leaking = [600.0 + 6 * i for i in range(10)]  # +6 MB per sample: a 9 % climb
    start, end, growth = rss_floor_growth(leaking)
    assert start == 600.0 and end == 648.0 and growth == pytest.approx(8.0)
    spiky_leak = [x + (50 if i % 3 == 0 else 0) for i, x in enumerate(leaking)]
    assert rss_floor_growth(spiky_leak)[2] > 5


def test_a_short_run_still_gets_a_figure() -> None:
    assert rss_floor_growth([100.0]) == (100.0, 100.0, 0.0)
    assert rss_floor_growth([100.0, 102.0])[2] == pytest.approx(2.0)
    assert rss_floor_growth([100.0, 101.0, 110.0, 102.0]) == (100.0, 102.0, pytest.approx(2.0))
