"""Parsers for nvpmodel -q, -q --verbose and the status file, on real captures."""

from __future__ import annotations

import pytest

from edge_agent.errors import CommandError, HardwareError
from edge_agent.hardware.nvpmodel import (
    NvpQuery,
    NvpVerboseParam,
    parse_query,
    parse_query_verbose,
    parse_status,
)
from tests.hardware.captures import capture


def test_query_with_fan_warning_first() -> None:
    query = parse_query(capture("nvpmodel_q_fan_warning.txt"))
    assert query == NvpQuery("MAXN", 0, ("NVPM WARN: fan mode is not set!",))


def test_query_plain() -> None:
    assert parse_query(capture("nvpmodel_q_orin_nano_snap.txt")) == NvpQuery("15W", 0, ())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "NV Fan Mode:cool\nNV Power Mode: MODE_30W\n2\n",
            NvpQuery("MODE_30W", 2, ("NV Fan Mode:cool",)),
        ),
        ("NV Power Mode: MAXN_SUPER\n\n2\n", NvpQuery("MAXN_SUPER", 2, ())),
        (
            "NVPM ERROR: Error opening /sys/kernel/nvpmodel_emc_cap/emc_iso_cap: 13\n"
            "NV Power Mode: MAXP_CORE_ARM\n3\n",
            NvpQuery(
                "MAXP_CORE_ARM",
                3,
                ("NVPM ERROR: Error opening /sys/kernel/nvpmodel_emc_cap/emc_iso_cap: 13",),
            ),
        ),
    ],
)
def test_query_variants(text: str, expected: NvpQuery) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("NVPM WARN: fan mode is not set!\n", "no 'NV Power Mode' line"),
        ("", "no 'NV Power Mode' line"),
        ("NV Power Mode: MAXN\n", "no integer mode id"),
        ("NV Power Mode: MAXN\nzero\n", "no integer mode id"),
    ],
)
def test_query_without_mode_is_a_command_error(text: str, needle: str) -> None:
    # jetson_stats#567: jtop's service crashed on this output; we raise with the output quoted.
    with pytest.raises(CommandError) as info:
        parse_query(text)
    assert needle in str(info.value)
    assert info.value.output == text
    if text.strip():
        assert text.strip().splitlines()[0] in str(info.value)


def test_query_verbose_orin_nano() -> None:
    query, rows = parse_query_verbose(capture("nvpmodel_q_verbose_orin_nano_r36.txt"))
    assert query == NvpQuery("25W", 1, ())
    assert len(rows) == 5
    assert rows[0] == NvpVerboseParam(
        "FBP_POWER_GATING", "FBP_PG_MASK", "/sys/devices/platform/gpu.0/fbp_pg_mask", "2", "2"
    )
    gpu = next(r for r in rows if r.param == "GPU")
    assert gpu.path == "/sys/devices/platform/17000000.gpu/devfreq_dev/max_freq"
    assert (gpu.real_value, gpu.conf_value) == ("918000000", "918000000")
    emc = rows[-1]
    assert (emc.param, emc.arg, emc.path) == ("EMC", "MAX_FREQ", "/sys/kernel/nvpmodel_clk_cap/emc")


def test_query_verbose_int_max_conf_value() -> None:
    # R36 prints a conf "-1" as INT64_MAX.
    text = (
        "NVPM VERB: Current mode: NV Power Mode: MAXN_SUPER\n2\n"
        "NVPM VERB: PARAM GPU: ARG MAX_FREQ: PATH /sys/devices/platform/17000000.gpu/devfreq_dev/"
        "max_freq: REAL_VAL: 1020000000 CONF_VAL: 9223372036854775807\n"
    )
    query, rows = parse_query_verbose(text)
    assert query.id == 2
    assert rows[0].conf_value == "9223372036854775807"
    assert int(rows[0].real_value) == 1020000000


def test_query_verbose_without_mode_raises() -> None:
    with pytest.raises(CommandError, match="--verbose"):
        parse_query_verbose("NVPM VERB: Config file: /etc/nvpmodel.conf\n")


@pytest.mark.parametrize(
    ("text", "mode_id"),
    [
        (capture("nvpmodel_status.txt"), 2),
        ("pmode:0001 fmode:fanNull", 1),
        ("pmode:0000", 0),
    ],
)
def test_status(text: str, mode_id: int) -> None:
    assert parse_status(text) == mode_id


@pytest.mark.parametrize("text", ["", "fmode:quiet", "pmode:abc fmode:x"])
def test_bad_status(text: str) -> None:
    with pytest.raises(HardwareError, match="pmode"):
        parse_status(text)
