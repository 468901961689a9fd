"""The driver option allowlists and the path rule, in process (the HTTP side is in
tests/integration/test_driver_options.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from netpulse.config import get_settings
from netpulse.dispatch.intake import checked
from netpulse.drivers.base import DriverError
from netpulse.models.request import ConnectionArgs, ExecutionRequest
from netpulse.plugins.drivers.netmiko.driver import NetmikoDriver
from netpulse.plugins.drivers.paramiko.driver import ParamikoDriver


@pytest.fixture
def files_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "device-files"
    directory.mkdir()
    monkeypatch.setenv("NETPULSE_DRIVERS__FILES_DIR", str(directory))
    get_settings.cache_clear()
    yield directory.resolve()
    get_settings.cache_clear()


def paramiko_job(**options: object) -> dict[str, object]:
    return {
        "driver": "paramiko",
        "connection_args": {"host": "h", "username": "u", **options},
        "command": "true",
    }


def message(body: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as caught:
        checked(ExecutionRequest, body)
    return str(caught.value)


def test_paths_inside_pass_relative_ones_too(files_dir: Path) -> None:
    (files_dir / "keys").mkdir()
    checked(ExecutionRequest, paramiko_job(key_filename=str(files_dir / "keys" / "a")))
    checked(ExecutionRequest, paramiko_job(key_filename="keys/a"))
    checked(ExecutionRequest, paramiko_job(key_filename=["keys/a", "keys/b"]))


def test_paths_outside_dotdot_or_through_symlinks_are_refused(
    files_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("s3cr3t-first-line\n")
    (files_dir / "link").symlink_to(tmp_path / "secret")
    (files_dir / "dirlink").symlink_to(tmp_path)
    for path in (
        str(tmp_path / "secret"),
        str(files_dir / "link"),
        "dirlink/secret",
        f"{files_dir}/../secret",
        "../secret",
    ):
        text = message(paramiko_job(key_filename=path))
        assert "connection_args.key_filename" in text and "paramiko driver" in text, path
        assert "s3cr3t" not in text


def test_the_default_files_dir_is_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NETPULSE_DRIVERS__FILES_DIR", raising=False)
    monkeypatch.setenv("NETPULSE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        checked(ExecutionRequest, paramiko_job(key_filename="id_ed25519"))
        inside = str(tmp_path / "device-files" / "id_ed25519")
        checked(ExecutionRequest, paramiko_job(key_filename=inside))
        assert "key_filename" in message(paramiko_job(key_filename=str(tmp_path / "id")))
    finally:
        get_settings.cache_clear()


def test_the_worker_checks_again_before_it_connects(files_dir: Path, tmp_path: Path) -> None:
    """A job queued unchecked (an older controller, another files_dir) fails, never runs."""
    args = ConnectionArgs.model_validate(
        {"host": "127.0.0.1", "port": 1, "username": "u", "key_filename": str(tmp_path / "k")}
    )
    with pytest.raises(DriverError, match=r"connection_args\.key_filename"):
        ParamikoDriver(args).connect()
    log = files_dir / "session.log"
    args = ConnectionArgs.model_validate(
        {"host": "127.0.0.1", "port": 1, "device_type": "linux", "session_log": str(log)}
    )
    with pytest.raises(DriverError, match="session_log is not allowed"):
        NetmikoDriver(args).connect()
    assert not log.exists()


def test_serial_device_types_are_refused(files_dir: Path) -> None:
    body = {
        "driver": "netmiko",
        "connection_args": {"host": "h", "device_type": "cisco_ios_serial"},
        "command": "show version",
    }
    req = checked(ExecutionRequest, body)
    with pytest.raises(ValueError, match="serial"):
        NetmikoDriver.validate_request(req)


def test_null_options_are_accepted_and_not_passed(files_dir: Path) -> None:
    req = checked(ExecutionRequest, paramiko_job(key_filename=None, timeout=None))
    assert ParamikoDriver.check_connection_args(req.connection_args) == {
        "key_filename": None,
        "timeout": None,
    }
