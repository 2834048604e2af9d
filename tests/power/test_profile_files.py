"""Profile files: every bundled YAML validates, malformed files are rejected, boards match."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import CustomProfileConfig
from edge_agent.errors import ConfigError, ProfileError
from edge_agent.power.profile_state import cap_matches, nearest
from edge_agent.power.profiles import (
    ClockCaps,
    ProfileFile,
    load_profile_files,
    parse_profile_file,
    resolve_profiles,
    select_board_file,
)

REPO_PROFILES = Path(__file__).resolve().parents[2] / "power_profiles"
REQUIRED = ("jetson-tx2", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-orin-nano",
            "jetson-orin-nano-super", "jetson-orin-nx", "jetson-agx-orin")  # fmt: skip

GOOD = """\
board: test-board
match: {compatible: ["vendor,board"]}
clusters: {big: [0, 1]}
profiles:
  maxq:
    description: slow
    nvpmodel: LOW
    clocks: {gpu_max_hz: 500000000, cpu_max_khz: {big: 1000000}, cpus_online: [0, 1]}
"""


def _bundled() -> dict[str, ProfileFile]:
    return {parsed.board: parsed for _, parsed in load_profile_files()}


def test_every_yaml_on_disk_validates_and_is_bundled() -> None:
    on_disk = sorted(REPO_PROFILES.glob("*.yaml"))
    assert len(on_disk) >= len(REQUIRED)
    bundled = _bundled()
    for path in on_disk:
        parsed = parse_profile_file(path.read_text(encoding="utf-8"), path.name)
        assert parsed.board == path.stem
        assert bundled[parsed.board] == parsed
    assert set(REQUIRED) <= set(bundled)


@pytest.mark.parametrize("board", REQUIRED)
def test_presets_have_mode_description_and_caps(board: str) -> None:
    parsed = _bundled()[board]
    for name in ("maxq", "maxp", "maxn"):
        spec = parsed.profiles[name]
        assert spec.nvpmodel, f"{board} {name} names no nvpmodel mode"
        assert spec.description
        assert "\n" not in spec.description
        assert spec.clocks.cpus_online is not None
        assert 0 in spec.clocks.cpus_online
        for cluster in spec.clocks.cpu_max_khz:
            assert cluster in parsed.clusters


def test_tx2_follows_the_published_figures() -> None:
    tx2 = _bundled()["jetson-tx2"].profiles
    assert tx2["maxq"].nvpmodel == "MAXQ"
    assert tx2["maxq"].clocks == ClockCaps(
        gpu_max_hz=854250000,
        cpu_max_khz={"a57": 1200000},
        cpus_online=[0, 3, 4, 5],
        emc_max_hz=1331200000,
    )
    assert tx2["maxp"].nvpmodel == "MAXP_CORE_ALL"
    assert tx2["maxp"].clocks.gpu_max_hz == 1122000000
    assert tx2["maxn"].nvpmodel == "MAXN"


def test_orin_nano_maxq_is_7w_in_both_confs() -> None:
    bundled = _bundled()
    assert bundled["jetson-orin-nano"].profiles["maxq"].nvpmodel == "7W"
    assert bundled["jetson-orin-nano-super"].profiles["maxq"].nvpmodel == "7W"
    assert bundled["jetson-orin-nano-super"].profiles["maxn"].nvpmodel == "MAXN_SUPER"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD.replace("nvpmodel: LOW", "nvpmodel: LOW\n    colour: red"), "profiles.maxq.colour"),
        (GOOD.replace("500000000", "fast"), "profiles.maxq.clocks.gpu_max_hz"),
        (GOOD.replace("big: 1000000", "little: 1000000"), "(file)"),
        (GOOD.replace("[0, 1]}", "[1]}"), "profiles.maxq.clocks.cpus_online"),
        (GOOD.replace("description: slow", "description: ''"), "profiles.maxq.description"),
        (GOOD.replace("maxq:", "list:"), "profiles"),
        (GOOD.replace('match: {compatible: ["vendor,board"]}', "match: {}"), "match"),
        (GOOD.replace("board: test-board\n", ""), "board"),
    ],
)
def test_malformed_file_is_rejected_naming_file_and_field(text: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_profile_file(text, "broken.yaml")
    paths = [item.path for item in caught.value.errors]
    assert any(p.startswith("broken.yaml: ") for p in paths), paths
    assert any(p == f"broken.yaml: {field}" or p.startswith(f"broken.yaml: {field}.")
               for p in paths), paths  # fmt: skip


def test_bad_yaml_syntax_names_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_profile_file("board: [unclosed\n", "syntax.yaml")
    assert caught.value.errors[0].path == "syntax.yaml"
    assert "invalid YAML" in caught.value.errors[0].message


def test_malformed_file_in_profiles_dir_fails_load(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(GOOD.replace("500000000", "-5"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profile_files([tmp_path])
    assert str(tmp_path / "mine.yaml") in caught.value.errors[0].path


def test_profiles_dir_adds_a_board(tmp_path: Path) -> None:
    (tmp_path / "test-board.yaml").write_text(GOOD, encoding="utf-8")
    files = load_profile_files([tmp_path])
    source, parsed = select_board_file(
        files, model="x", compatible=("vendor,board",), conf_modes={"LOW"}
    )
    assert source == str(tmp_path / "test-board.yaml")
    assert list(parsed.profiles) == ["maxq"]


def test_matching_by_compatible_model_and_conf_variant() -> None:
    files = load_profile_files()
    tx2 = select_board_file(
        files, model="quill", compatible=("nvidia,p2771-0000", "nvidia,tegra186"), conf_modes=None
    )
    assert tx2[1].board == "jetson-tx2"
    by_model = select_board_file(
        files, model="NVIDIA Jetson AGX Orin", compatible=("nvidia,tegra234",), conf_modes=None
    )
    assert by_model[1].board == "jetson-agx-orin"
    nano = ("nvidia,p3768-0000+p3767-0005-super", "nvidia,p3767-0005", "nvidia,tegra234")
    stock = {"15W", "7W"}
    super_modes = {"15W", "25W", "MAXN_SUPER", "7W"}
    for modes, board in ((stock, "jetson-orin-nano"), (super_modes, "jetson-orin-nano-super")):
        found = select_board_file(files, model="Orin Nano", compatible=nano, conf_modes=modes)
        assert found[1].board == board
    assert select_board_file(files, model="", compatible=nano, conf_modes=None)[1].board == (
        "jetson-orin-nano"
    )
    # The 3-mode super conf (no 7W) still finds the super file.
    three = {"15W", "25W", "MAXN_SUPER"}
    found = select_board_file(files, model="Orin Nano", compatible=nano, conf_modes=three)
    assert found[1].board == "jetson-orin-nano-super"
    nx = ("nvidia,p3768-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234")
    for modes, board in (
        ({"MAXN", "10W", "15W", "25W"}, "jetson-orin-nx"),
        ({"MAXN_SUPER", "10W", "15W", "25W", "40W"}, "jetson-orin-nx-super"),
    ):
        assert select_board_file(files, model="", compatible=nx, conf_modes=modes)[1].board == board


def test_fallback_replaces_a_mode_the_conf_lacks() -> None:
    source, parsed = next(
        (s, f) for s, f in load_profile_files() if f.board == "jetson-orin-nano-super"
    )
    full = {
        p.name: p for p in resolve_profiles(source, parsed, {}, {"15W", "25W", "MAXN_SUPER", "7W"})
    }
    assert full["maxq"].nvpmodel_mode == "7W"
    three = {p.name: p for p in resolve_profiles(source, parsed, {}, {"15W", "25W", "MAXN_SUPER"})}
    assert three["maxq"].nvpmodel_mode == "15W"
    assert three["maxq"].clocks == parsed.profiles["15w"].clocks
    assert three["maxq"].description.endswith("(this conf has no 7W mode: maxq is 15w)")


@pytest.mark.parametrize(
    ("fallback", "message"),
    [("nope", "fallback 'nope' is not another profile"), ("maxq", "is not another profile")],
)
def test_bad_fallback_is_rejected(fallback: str, message: str) -> None:
    text = GOOD.replace("    nvpmodel: LOW\n", f"    nvpmodel: LOW\n    fallback: {fallback}\n")
    with pytest.raises(ConfigError, match=message):
        parse_profile_file(text, "t.yaml")


def test_unmatched_board_names_model_and_compatible() -> None:
    with pytest.raises(ProfileError) as caught:
        select_board_file(
            load_profile_files(), model="Raspberry Pi 4", compatible=("raspberrypi,4-model-b",),
            conf_modes=None,
        )  # fmt: skip
    assert "Raspberry Pi 4" in str(caught.value)
    assert "raspberrypi,4-model-b" in str(caught.value)


def test_forced_board_and_unknown_forced_board() -> None:
    files = load_profile_files()
    forced = select_board_file(
        files, model="", compatible=(), conf_modes=None, forced_board="jetson-tx2"
    )
    assert forced[1].board == "jetson-tx2"
    with pytest.raises(ProfileError, match="jetson-tx2"):
        select_board_file(files, model="", compatible=(), conf_modes=None, forced_board="nope")


def test_custom_profiles_from_config_join_the_file_profiles() -> None:
    source, parsed = next((s, f) for s, f in load_profile_files() if f.board == "jetson-tx2")
    custom = {"eco": CustomProfileConfig(gpu_max_hz=600000000, cpu_max_khz={"a57": 900000})}
    profiles = resolve_profiles(source, parsed, custom)
    assert [p.name for p in profiles][-1] == "eco"
    eco = profiles[-1]
    assert eco.nvpmodel_mode is None
    assert eco.source == "config"
    assert eco.cpus_of("a57") == [0, 3, 4, 5]
    assert eco.cpus_of("cpu2") == [2]
    with pytest.raises(ProfileError, match="unknown CPU cluster 'big'"):
        resolve_profiles(source, parsed, {"x": CustomProfileConfig(cpu_max_khz={"big": 1})})
    with pytest.raises(ProfileError, match="reserved"):
        resolve_profiles(source, parsed, {"show": CustomProfileConfig(gpu_max_hz=1)})


def test_cap_matching_accepts_written_value_or_nearest_table_entry() -> None:
    table = (114750000, 726750000, 854250000, 930750000, 1300500000)
    assert nearest(850000000, table) == 854250000
    assert cap_matches(850000000, 854250000, table)
    assert cap_matches(850000000, 850000000, table)
    assert not cap_matches(850000000, 726750000, table)
    assert cap_matches("max", 1300500000, table)
    assert not cap_matches("max", 930750000, table)
    assert not cap_matches(850000000, None, table)
    assert cap_matches(1200000, 1200000, ())
    assert not cap_matches(1200000, 1267200, ())
