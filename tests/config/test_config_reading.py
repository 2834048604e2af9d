"""The bounded reader and the file checks: what passes, what is refused, and how."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.cli.main import main
from edge_agent.config import load_config, read_secret, validate_config
from edge_agent.config_files import check_tls_files
from edge_agent.config_reader import MAX_CONFIG_BYTES, parse_yaml, read_config_file
from edge_agent.errors import ConfigError
from edge_agent.power.profile_check import profile_checks
from edge_agent.sim import create_board
from tests.fakes.broker import MosquittoBroker
from tests.fakes.models import write_flat_input


def _write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_size_cap_is_exact(tmp_path: Path) -> None:
    body = "device_id: d1\n"
    fits = _write(tmp_path, "#" * (MAX_CONFIG_BYTES - len(body) - 1) + "\n" + body)
    assert read_config_file(fits) == {"device_id": "d1"}
    over = _write(tmp_path, "#" * (MAX_CONFIG_BYTES - len(body)) + "\n" + body, "over.yaml")
    with pytest.raises(ConfigError, match=f"at most {MAX_CONFIG_BYTES} bytes"):
        read_config_file(over)


def test_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    text = (
        "defaults: &cam {uri: 'synthetic://digits', fps: 10}\n"
        "cameras:\n  - {<<: *cam, name: a}\n  - {<<: *cam, name: b, fps: 5}\n"
    )
    data = parse_yaml(text, "t")
    assert data["cameras"] == [
        {"uri": "synthetic://digits", "fps": 10, "name": "a"},
        {"uri": "synthetic://digits", "fps": 5, "name": "b"},
    ]


def test_depth_limit_is_exact() -> None:
    ok = "a: " + "[" * 31 + "]" * 31 + "\n"  # the mapping is level 1, 31 lists below it
    assert parse_yaml(ok, "t")["a"] is not None
    with pytest.raises(ConfigError, match="nested deeper than 32"):
        parse_yaml("a: " + "[" * 32 + "]" * 32 + "\n", "t")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_give_a_config_error(data: bytes) -> None:
    _parse_or_refuse(data)


def _parse_or_refuse(data: bytes | str) -> None:
    """Anything but a mapping or a ConfigError with field paths (a traceback) fails."""
    errors: list[str] = []
    try:
        result = parse_yaml(data, "fuzz")
    except ConfigError as err:
        errors = [e.path for e in err.errors]
        result = None
    if result is None:
        assert errors
        assert all(errors)
    else:
        assert isinstance(result, dict)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="[]{}:,-&*! \n\tab'\"#|>", max_size=300))
def test_yaml_punctuation_parses_or_gives_a_config_error(text: str) -> None:
    _parse_or_refuse(text)


def test_relative_state_dir_and_root_resolve_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = _write(folder, "state_dir: state\nroot: board\n")
    config = load_config(path, env={})
    assert config.state_dir == folder.resolve() / "state"
    assert config.root == folder.resolve() / "board"


def test_world_readable_password_file_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    path = _write(tmp_path, "mqtt:\n  username: u\n  password_file: pw\n")
    secret.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_config(path, env={})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"mqtt.password_file {secret} has mode 0644: readable by other users; "
                        "chmod 600 it"]  # fmt: skip
    caplog.clear()
    secret.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        load_config(path, env={})
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, timeout=60, capture_output=True)


@needs_openssl
def test_real_tls_files_load_and_an_encrypted_key_is_refused_without_a_prompt(
    tmp_path: Path,
) -> None:
    key, crt = tmp_path / "c.key", tmp_path / "c.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=t",
             "-keyout", str(key), "-out", str(crt))  # fmt: skip
    assert check_tls_files(crt, crt, key) == []
    config = validate_config(
        {"mqtt": {"tls": {"ca_file": str(crt), "cert_file": str(crt), "key_file": str(key)}}},
        env={},
    )
    assert config.mqtt.tls is not None
    locked = tmp_path / "locked.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-passout", "pass:hunter2", "-days", "2",
             "-subj", "/CN=t", "-keyout", str(locked), "-out", str(tmp_path / "l.crt"))  # fmt: skip
    problems = check_tls_files(None, tmp_path / "l.crt", locked)
    assert [p.path for p in problems] == ["mqtt.tls.cert_file"]
    assert "encrypted" in problems[0].message


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_run_duration_must_be_positive(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--duration", value, "--no-live"]) == 2
    assert "--duration" in capsys.readouterr().err


def test_check_config_deep_loads_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path, "device_id: d1\n")
    assert main(["check-config", "--deep", str(good)]) == 0
    assert "model loaded" in capsys.readouterr().out
    flat = write_flat_input(tmp_path / "flat.onnx")
    bad = _write(tmp_path, f"model:\n  path: {flat}\n", "flat.yaml")
    assert main(["check-config", str(bad)]) == 0, "the shallow check does not load models"
    capsys.readouterr()
    assert main(["check-config", "--deep", str(bad)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("model: "), out
    assert "flat.onnx" in out
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    bad = _write(tmp_path, f"model:\n  path: {corrupt}\n", "corrupt.yaml")
    assert main(["check-config", "--deep", str(bad)]) == 2
    assert "model: " in capsys.readouterr().out


def test_profile_initial_is_checked_against_the_detected_board(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board = tmp_path / "orin"
    create_board("jetson-orin-nano", board)
    tx2_only = _write(tmp_path, "profile:\n  initial: maxp_denver\n")
    # Without --root on a host that is no Jetson, any board's profile name passes...
    assert main(["check-config", str(tx2_only)]) == 0
    capsys.readouterr()
    # ...with --root the board is detected, and the TX2-only profile is refused.
    assert main(["check-config", "--root", str(board), str(tx2_only)]) == 2
    assert capsys.readouterr().out.startswith("profile.initial: unknown profile 'maxp_denver'")
    ok = _write(tmp_path, "profile:\n  initial: maxq\n", "ok.yaml")
    assert main(["check-config", "--root", str(board), str(ok)]) == 0


@pytest.mark.slow
def test_a_run_without_results_exits_1(
    tmp_path: Path, mosquitto: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "broken.avi"
    video.write_bytes(b"RIFF not a video" * 64)
    path = _write(
        tmp_path,
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}}}\n"
        f"cameras:\n  - {{name: door, uri: 'file://{video}', reconnect_max_s: 1}}\n",
    )
    argv = ["run", "--sim", "jetson-orin-nano", "--config", str(path), "--duration", "1.5"]
    code = main([*argv, "--state-dir", str(tmp_path / "state"), "--no-live"])
    assert code == 1
    assert "error: no results in 1.5 s" in capsys.readouterr().err


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["synthetic://pattern?w=9&h=9", "file:///dev/zero", "/dev/zero", "a\x00b"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["name", "uri", "fps", "path", "host", "initial", "width", "x"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "device_id",
                "root",
                "state_dir",
                "board",
                "profile",
                "power",
                "model",
                "cameras",
                "batching",
                "mqtt",
                "telemetry",
                "fleet",
            ]
        ),
        _VALUES,
        max_size=5,
    )
)
def test_any_document_validates_or_gives_field_errors(data: dict[str, object]) -> None:
    problems: list[tuple[str, str]] = []
    try:
        validate_config(data, env={}, extra_checks=profile_checks())
    except ConfigError as err:
        problems = [(e.path, e.message) for e in err.errors] or [("", "")]
    assert all(path and message for path, message in problems)


def test_secrets_are_read_with_the_same_bounds(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    assert read_secret(secret) == "s3cret"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"\(secret\): .*fifo is not a regular file \(a FIFO\)"):
        read_secret(fifo)
    secret.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(ConfigError, match="at most 65536 bytes"):
        read_secret(secret)


@pytest.mark.slow
def test_a_sim_run_warns_once_about_a_shared_password_file(
    tmp_path: Path, mosquitto: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o640)
    path = _write(
        tmp_path,
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}, username: u, "
        "password_file: pw}\n",
    )
    argv = ["run", "--sim", "jetson-orin-nano", "--config", str(path), "--duration", "1"]
    assert main([*argv, "--state-dir", str(tmp_path / "state"), "--no-live"]) == 0
    err = capsys.readouterr().err
    assert err.count("WARNING") == err.count("has mode 0640") == 1, err
