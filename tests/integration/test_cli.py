"""The `netpulse` command as a user runs it: `up --lab`, `run`, `webhook listen`, bad config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from netpulse.runtime.ports import free_port
from tests.conftest import API_KEY
from tests.support import processes

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The user's environment: no NetPulse settings from the test session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETPULSE_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_with_lab_runs_a_job_end_to_end_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netpulse",
            "up",
            "--lab",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            "2",
        ],
        env=clean_env(COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.strip() == "[ready]":
                break
        text = "".join(output)
        assert "[ready]" in text, text
        api_key = (data_dir / "api_key").read_text().strip()
        assert api_key in text and f"http://127.0.0.1:{port}" in text and "curl" in text
        assert oct((data_dir / "api_key").stat().st_mode & 0o777) == "0o600"
        inventory = json.loads((data_dir / "lab-inventory.json").read_text())
        ios = next(d for d in inventory if d["device_type"] == "cisco_ios")
        args = {k: v for k, v in ios.items() if k != "name"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-KEY": api_key}) as c:
            body = {
                "driver": "netmiko",
                "connection_args": args,
                "command": "show version",
                "enable_mode": True,
            }
            job = c.post("/device/exec", json=body).json()
            job = c.get(f"/jobs/{job['id']}", params={"wait": 60}, timeout=70).json()
        assert job["status"] == "finished", job
        assert "Cisco" in job["result"]["retval"][0]["stdout"]
        redis_log = (data_dir / "redis" / "redis.log").read_text()
        assert (data_dir / "redis").exists() and redis_log
    finally:
        up.send_signal(signal.SIGINT)
        try:
            rest, _ = up.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    assert up.returncode == 0, rest
    assert "stopped." in rest
    assert not port_open(port)
    assert not port_open(ios["port"])


def test_a_wrong_setting_stops_start_up_with_a_sentence_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "netpulse", "controller"],
        env=clean_env(NETPULSE_SERVER__PORT="99999", NETPULSE_REDIS__URL="redis://127.0.0.1:1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "server.port" in result.stdout and "NETPULSE_SERVER__PORT" in result.stdout


def test_a_wrong_setting_in_the_yaml_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "netpulse.yaml"
    config.write_text("job:\n  ttl: 0\n")
    result = subprocess.run(
        [sys.executable, "-m", "netpulse", "worker", "fifo"],
        env=clean_env(NETPULSE_CONFIG_FILE=str(config)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "job.ttl" in result.stdout


def test_run_command_prints_the_output(
    system: httpx.Client, controller_url: str, lab: dict[str, Any]
) -> None:
    dev = next(d for d in lab.values() if d.device_type == "cisco_ios")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "netpulse",
            "run",
            "--host",
            dev.host,
            "--port",
            str(dev.port),
            "--username",
            dev.username,
            "--enable",
            "-c",
            "show version",
            "--url",
            controller_url,
        ],
        env=clean_env(
            NETPULSE_API_KEY=API_KEY, NETPULSE_DEVICE_PASSWORD=dev.password, COLUMNS="200"
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Cisco" in result.stdout and "finished" in result.stdout


def test_webhook_listen_prints_events_and_checks_signatures(tmp_path: Path) -> None:
    from netpulse.webhooks.signing import build_headers, generate_secret

    secret = generate_secret()
    port = free_port()
    log = tmp_path / "listen.log"
    listener = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netpulse",
            "webhook",
            "listen",
            "--port",
            str(port),
            "--secret",
            secret,
        ],
        env=clean_env(COLUMNS="200"),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        processes.wait_until(lambda: port_open(port), 30, "the listener")
        body = json.dumps({"id": "j1", "event_type": "job.completed", "status": "finished"})
        good = build_headers("msg_1", body.encode(), [secret])
        reply = httpx.post(f"http://127.0.0.1:{port}/hook", content=body, headers=good)
        assert reply.status_code == 200
        bad = {**good, "webhook-signature": "v1,AAAA"}
        assert (
            httpx.post(f"http://127.0.0.1:{port}/hook", content=body, headers=bad).status_code
            == 401
        )
        processes.wait_until(lambda: "INVALID" in log.read_text(), 10, "the listener output")
        text = log.read_text()
        assert "job.completed" in text and "valid" in text
    finally:
        processes.stop(listener)


@pytest.mark.parametrize("args", [["--help"], ["up", "--help"], ["worker", "--help"]])
def test_help(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "netpulse", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 0 and "Usage" in result.stdout
