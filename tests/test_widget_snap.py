"""The one helper every explorer uses to snap a control to a precomputed value: never raises, always says why."""

import numpy as np
import pytest
import torch

from polylens.widgets.snap import as_number, snap, whole

GRID = (0.0, 0.5, 1.0, 2.0)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), torch.tensor(0.5), 1, np.int64(2)])
def test_a_value_on_the_grid_is_shown_without_a_note(value):
    notes = []
    assert snap(GRID, value, "alpha", notes) == float(value) and notes == []


@pytest.mark.parametrize("value, shown, says", [
    (0.6, 0.5, "alpha 0.6 was not precomputed; showing the nearest, 0.5"),
    (-3, 0.0, "alpha runs from 0 to 2; showing the nearest, 0"),
    (float("inf"), 2.0, "alpha runs from 0 to 2"),
    (10 ** 400, 2.0, "alpha runs from 0 to 2"),
    (-(10 ** 400), 0.0, "alpha runs from 0 to 2"),
])
def test_numbers_off_the_grid_show_the_nearest_and_say_so(value, shown, says):
    notes = []
    assert snap(GRID, value, "alpha", notes) == shown
    assert len(notes) == 1 and says in notes[0]


@pytest.mark.parametrize("value", [None, "2", b"1", True, np.bool_(False), float("nan"), [1.0, 2.0], np.ones(3), {},
                                   1 + 2j, np.complex128(1 + 1j), torch.tensor(1 + 2j), torch.tensor(True),
                                   np.array(True), torch.ones(2)])
def test_anything_that_is_not_one_number_shows_the_default(value):
    notes = []
    assert snap(GRID, value, "alpha", notes, default=1.0) == 1.0
    assert len(notes) == 1 and "alpha must be a number" in notes[0]
    assert snap(GRID, value, "alpha", []) == GRID[0], "the default default is the first option"


def test_the_reason_for_an_off_grid_value_is_the_callers():
    notes = []
    snap((32, 64), 40, "size", notes, missing="was not trained")
    assert notes == ["size 40 was not trained; showing the nearest, 32"]


def test_log_scale_picks_the_nearest_ratio():
    # 0.05 is 5x from 0.01 and 2x from 0.1: on a log axis the nearest is 0.1 (on a linear one, 0.01).
    assert snap((0.01, 0.1, 1.0), 0.05, "L1", [], log=True) == 0.1
    assert snap((0.01, 0.1, 1.0), 0.05, "L1", []) == 0.01
    assert snap((0.01, 0.1, 1.0), -1.0, "L1", [], log=True) == 0.01  # below a positive grid: its low end


def test_as_number_and_whole():
    assert np.isnan(as_number("3")) and np.isnan(as_number(True)) and as_number(10 ** 400) == float("inf")
    notes = []
    assert whole(np.int64(3), 1, "depth", notes) == 3 and notes == []
    assert whole(2.6, 1, "depth", notes) == 3 and "whole number" in notes[-1]
    assert whole(None, 1, "depth", notes) == 1 and len(notes) == 2
