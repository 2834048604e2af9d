"""Board detection from device-tree files and /etc/nv_tegra_release."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.hardware.board import BoardInfo, board_slug, detect_board, parse_release
from edge_agent.hardware.root import Root
from tests.fakes.sysfs import make_board

R36_RELEASE = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\n"
)
R32_RELEASE = (
    "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, EABI: aarch64, "
    "DATE: Sat Feb 19 17:07:00 UTC 2022\n"
)


def test_orin_nano(tmp_path: Path) -> None:
    make_board(
        tmp_path,
        "NVIDIA Jetson Orin Nano Developer Kit",
        ["nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"],
        R36_RELEASE,
    )
    assert detect_board(Root(tmp_path)) == BoardInfo(
        model="NVIDIA Jetson Orin Nano Developer Kit",
        compatible=("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"),
        l4t_release="R36.4.3",
        is_jetson=True,
        soc="tegra234",
        slug="jetson-orin-nano",
    )


def test_tx2(tmp_path: Path) -> None:
    make_board(tmp_path, "quill", ["nvidia,p2771-0000+p3310-1000", "nvidia,tegra186"], R32_RELEASE)
    info = detect_board(Root(tmp_path))
    assert (info.model, info.l4t_release, info.soc, info.slug) == (
        "quill",
        "R32.7.1",
        "tegra186",
        "jetson-tx2",
    )
    assert info.is_jetson


def test_non_jetson_without_files(tmp_path: Path) -> None:
    assert detect_board(Root(tmp_path)) == BoardInfo("", (), None, False, None, None)


def test_non_jetson_device_tree(tmp_path: Path) -> None:
    make_board(
        tmp_path, "Raspberry Pi 4 Model B Rev 1.4", ["raspberrypi,4-model-b", "brcm,bcm2711"]
    )
    info = detect_board(Root(tmp_path))
    assert info.model == "Raspberry Pi 4 Model B Rev 1.4"
    assert info.compatible == ("raspberrypi,4-model-b", "brcm,bcm2711")
    assert not info.is_jetson
    assert info.slug is None


def test_unreadable_model_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "proc/device-tree/model").mkdir(parents=True)
    make_board(tmp_path, None, ["nvidia,tegra194"])
    info = detect_board(Root(tmp_path))
    assert (info.model, info.is_jetson, info.soc) == ("", True, "tegra194")


@pytest.mark.parametrize(
    ("text", "release"),
    [
        (R36_RELEASE, "R36.4.3"),
        (R32_RELEASE, "R32.7.1"),
        ("# R28 (release), REVISION: 1.0", "R28.1.0"),
        ("garbage", None),
    ],
)
def test_parse_release(text: str, release: str | None) -> None:
    assert parse_release(text) == release


@pytest.mark.parametrize(
    ("model", "compatible", "slug"),
    [
        ("", ("nvidia,p3449-0000+p3668-0001", "nvidia,tegra194"), "jetson-xavier-nx"),
        ("", ("nvidia,p3737-0000+p3701-0005", "nvidia,tegra234"), "jetson-agx-orin"),
        ("", ("nvidia,p3768-0000+p3767-0000", "nvidia,tegra234"), "jetson-orin-nx"),
        ("", ("nvidia,p3768-0000+p3767-0003", "nvidia,tegra234"), "jetson-orin-nano"),
        ("", ("nvidia,p3509-0000+p3636-0001", "nvidia,tegra186"), "jetson-tx2-nx"),
        ("", ("nvidia,p3449-0000-b00+p3448-0000-b00", "nvidia,tegra210"), "jetson-nano"),
        ("", ("nvidia,p2972-0000", "nvidia,galen", "nvidia,tegra194"), "jetson-agx-xavier"),
        ("Jetson AGX Orin Developer Kit", ("nvidia,tegra234",), "jetson-agx-orin"),
        ("NVIDIA Jetson Xavier NX Developer Kit", (), "jetson-xavier-nx"),
        ("Something else", ("nvidia,tegra999",), None),
    ],
)
def test_board_slug(model: str, compatible: tuple[str, ...], slug: str | None) -> None:
    assert board_slug(model, compatible) == slug
