from __future__ import annotations

import pytest

from edge_agent.governor.points import (
    FrequencyTables,
    OperatingPoint,
    build_points,
    cpu_levels,
    fastest,
    floor_entry,
    preset,
    slowest,
    within_caps,
)
from tests.governor.synthetic import POINTS, PRESETS, TABLES


def test_grid_is_the_product_of_the_tables_plus_each_preset() -> None:
    grid = [p for p in POINTS if p.preset is None]
    assert len(grid) == 5 * 2 * 3
    assert {p.gpu_hz for p in grid} == set(TABLES.gpu_hz)
    assert {p.emc_hz for p in grid} == set(TABLES.emc_hz)
    assert preset(POINTS, "maxq").key == (306000000, 2133000000, 960000, "maxq")
    assert len(POINTS) == 30 + len(PRESETS)


def test_fastest_and_slowest_are_the_table_corners() -> None:
    assert fastest(POINTS).gpu_hz == 1020000000
    assert fastest(POINTS).emc_hz == 3199000000
    assert slowest(POINTS).key[:3] == (306000000, 2133000000, 960000)


def test_unknown_preset_is_an_error() -> None:
    with pytest.raises(KeyError, match="maxp"):
        preset(POINTS, "maxp")


def test_floor_entry_and_caps_never_invent_a_frequency() -> None:
    table = (306000000, 624750000, 1020000000)
    assert floor_entry(table, 700000000) == 624750000
    assert floor_entry(table, 1) == 306000000
    assert within_caps(table, 624750000) == (306000000, 624750000)
    assert within_caps(table, 0) == table
    assert within_caps(table, 1) == (306000000,)


def test_cpu_levels_come_from_the_table() -> None:
    table = tuple(range(115200, 1728001, 76800))
    levels = cpu_levels(table, [960000, 1344000])
    assert set(levels) <= set(table)
    assert max(levels) == max(table)
    assert floor_entry(table, 960000) in levels


def test_empty_table_is_refused() -> None:
    with pytest.raises(ValueError, match="gpu_hz"):
        FrequencyTables(gpu_hz=(), emc_hz=(1,), cpu_khz=(1,))


def test_label_names_presets_and_clocks() -> None:
    assert OperatingPoint(624750000, 2133000000, 1510400).label() == (
        "gpu 624.75/emc 2133/cpu 1510.4"
    )
    grid = [p for p in build_points(TABLES, PRESETS) if p.preset is None]
    assert grid[0].label().startswith("gpu 306")
