"""`netpulse exec FILE` as a user runs it: a device file (CSV or XLSX) in, jobs through the
real system (controller, workers, node) to lab devices and an OpenSSH server, a result file
out, and an exit status that says whether everything worked.

Every address is 127.0.0.1; the CLI runs as a separate process, as from a shell.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from netpulse.runtime.ports import free_port
from tests.conftest import API_KEY
from tests.integration.helpers import FINAL, device
from tests.support import processes

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The user's environment: no NetPulse settings from the test session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETPULSE_")}
    env.update(PYTHONPATH=str(ROOT), NETPULSE_API_KEY=API_KEY, COLUMNS="200", **extra)
    return env


def netpulse_exec(
    controller_url: str, out: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netpulse", "exec", *args, "--url", controller_url],
        env=clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=out,
    )


def result_file(out: Path) -> list[dict[str, str]]:
    (path,) = out.glob("result_*.csv")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def lab_rows(lab: dict[str, Any]) -> tuple[list[str], list[list[Any]], list[Any]]:
    """A device file of the lab: two selected IOS rows (vendor name and device type), EOS
    not selected, and a row with an empty Selected (not selected either)."""
    ios = [d for d in lab.values() if d.device_type == "cisco_ios"]
    eos = device(lab, "arista_eos")
    header = ["Selected", "Name", "Vendor", "IP", "Port", "Username", "Password", "Keepalive"]
    rows: list[list[Any]] = [
        [True, ios[0].name, "Cisco", ios[0].host, ios[0].port, "admin", ios[0].password, 60],
        ["yes", ios[1].name, "cisco_ios", ios[1].host, ios[1].port, "admin", ios[1].password, ""],
        [False, eos.name, "Arista", eos.host, eos.port, "admin", eos.password, ""],
        ["", eos.name, "Arista", eos.host, eos.port, "admin", eos.password, ""],
    ]
    return header, rows, ios


def assert_lab_result(result: subprocess.CompletedProcess[str], out: Path, ios: list[Any]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result_file(out)
    assert [(r["row"], r["device"]) for r in lines] == [
        ("2", f"127.0.0.1:{ios[0].port}"),
        ("3", f"127.0.0.1:{ios[1].port}"),
    ]
    for line in lines:
        assert line["status"] == "finished" and line["error"] == ""
        assert line["show version: exit"] == "0" and "Cisco IOS" in line["show version: output"]
        assert line["show clock: exit"] == "0" and "UTC" in line["show clock: output"]
        assert uuid.UUID(line["job id"])
    assert "2 devices" in result.stdout and "2 ok" in result.stdout
    assert "(2 not selected)" in result.stderr


def test_selected_csv_rows_run_and_each_has_its_line_in_the_result(
    system: httpx.Client, controller_url: str, lab: dict[str, Any], tmp_path: Path
) -> None:
    header, rows, ios = lab_rows(lab)
    path = write_csv(tmp_path / "devices.csv", header, rows)
    result = netpulse_exec(
        controller_url, tmp_path, str(path), "-c", "show version", "-c", "show clock", "--enable"
    )
    assert_lab_result(result, tmp_path, ios)
    job = system.get(f"/jobs/{result_file(tmp_path)[0]['job id']}").json()
    assert job["command"] == ["show version", "show clock"]


def test_an_xlsx_file_works_the_same(
    system: httpx.Client, controller_url: str, lab: dict[str, Any], tmp_path: Path
) -> None:
    import openpyxl

    header, rows, ios = lab_rows(lab)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append([None if cell == "" else cell for cell in row])
    book.save(tmp_path / "devices.xlsx")
    result = netpulse_exec(
        controller_url,
        tmp_path,
        "devices.xlsx",
        "--command",
        "show version",
        "-c",
        "show clock",
        "--enable",
    )
    assert_lab_result(result, tmp_path, ios)


def test_an_unreachable_device_is_exit_1_with_its_error_in_the_result(
    system: httpx.Client, controller_url: str, lab: dict[str, Any], tmp_path: Path
) -> None:
    ios = device(lab, "cisco_ios")
    closed = free_port()
    path = write_csv(
        tmp_path / "devices.csv",
        ["IP", "Port", "User", "Pass"],
        [[ios.host, ios.port, "admin", ios.password], ["127.0.0.1", closed, "admin", "x"]],
    )
    result = netpulse_exec(
        controller_url, tmp_path, str(path), "--vendor", "cisco", "-c", "show clock"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    good, bad = result_file(tmp_path)
    assert good["status"] == "finished" and good["show clock: exit"] == "0"
    assert bad["device"] == f"127.0.0.1:{closed}" and bad["status"] == "failed"
    assert bad["error"].startswith("connection: ") and str(closed) in bad["error"]
    assert bad["show clock: exit"] == ""
    assert f"row 3 127.0.0.1:{closed}: failed connection" in " ".join(result.stdout.split())


def test_a_file_without_an_ip_column_is_exit_2_naming_the_column(
    controller_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "fleet.csv",
        ["Selected", "Vendor", "Port", "User", "Pass"],
        [[1, "cisco", 22, "u", "p"]],
    )
    result = netpulse_exec(controller_url, tmp_path, str(path), "-c", "show clock")
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert "fleet.csv, row 1 (the header), column IP: missing: the file has no IP" in said
    assert not list(tmp_path.glob("result_*.csv"))


def test_password_from_stdin_works_and_is_never_shown(
    system: httpx.Client, controller_url: str, lab: dict[str, Any], tmp_path: Path
) -> None:
    ios = [d for d in lab.values() if d.device_type == "cisco_ios"]
    path = write_csv(
        tmp_path / "devices.csv",
        ["Vendor", "IP", "Port", "User"],
        [["cisco", d.host, d.port, d.username] for d in ios],
    )
    good = netpulse_exec(
        controller_url,
        tmp_path,
        str(path),
        "-c",
        "show clock",
        "--password-stdin",
        stdin=f"{ios[0].password}\n",
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert [r["status"] for r in result_file(tmp_path)] == ["finished", "finished"]
    text = good.stdout + good.stderr + next(tmp_path.glob("result_*.csv")).read_text()
    assert ios[0].password not in text

    # A wrong password: every login fails, and the password is in no message either.
    wrong = f"wrong-{uuid.uuid4().hex[:12]}"
    out = tmp_path / "wrong"
    out.mkdir()
    bad = netpulse_exec(
        controller_url,
        out,
        str(path),
        "-c",
        "show clock",
        "--password-stdin",
        "--queue-strategy",
        "fifo",
        stdin=wrong + "\n",
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = result_file(out)
    assert all(r["status"] == "failed" for r in lines)
    assert all(r["error"].startswith("authentication: ") for r in lines), lines
    assert wrong not in bad.stdout + bad.stderr + next(out.glob("result_*.csv")).read_text()


def test_a_stored_credential_logs_in_rows_without_a_login(
    system: httpx.Client, controller_url: str, lab: dict[str, Any], tmp_path: Path
) -> None:
    ios = device(lab, "cisco_ios")
    name = f"exec-{uuid.uuid4().hex[:8]}"
    reply = system.put(
        f"/credentials/{name}", json={"username": ios.username, "password": ios.password}
    )
    assert reply.status_code == 200, reply.text
    try:
        path = write_csv(tmp_path / "devices.csv", ["IP", "Port"], [[ios.host, ios.port]])
        result = netpulse_exec(
            controller_url,
            tmp_path,
            str(path),
            "-c",
            "show clock",
            "--vendor",
            "cisco_ios",
            "--credential",
            name,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result_file(tmp_path)[0]["show clock: exit"] == "0"
    finally:
        system.delete(f"/credentials/{name}")


def test_ctrl_c_cancels_the_queued_jobs_and_still_writes_the_result(
    system: httpx.Client, controller_url: str, sshd: Any, tmp_path: Path
) -> None:
    # Eight rows for one Linux host, a slow command, FIFO: two run at once on the host
    # (node.fifo_concurrency), six wait in the queue when Ctrl-C comes.
    marker = f"exec-ctrl-c-{uuid.uuid4().hex[:8]}"
    command = f"sleep 20 # {marker}"
    path = write_csv(
        tmp_path / "hosts.csv",
        ["Selected", "IP", "Port", "User"],
        [[1, sshd.host, sshd.port, sshd.username] for _ in range(8)],
    )
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netpulse",
            "exec",
            str(path),
            "-c",
            command,
            "--driver",
            "paramiko",
            "--queue-strategy",
            "fifo",
            "--connection-args",
            f'{{"key_filename": "{sshd.key_filename}"}}',
            "--url",
            controller_url,
            "--output",
            str(tmp_path),
        ],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ours: list[dict[str, Any]] = []
    try:

        def queued_and_running() -> bool:
            ours[:] = [
                j
                for j in system.get("/jobs", params={"host": sshd.host, "limit": 1000}).json()
                if j["command"] == [command]
            ]
            states = [j["status"] for j in ours]
            return states.count("started") == 2 and states.count("queued") == 6

        processes.wait_until(queued_and_running, 60, "two jobs running, six queued")
        queued = {j["id"] for j in ours if j["status"] == "queued"}
        cli.send_signal(signal.SIGINT)
        stdout, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
        for job in ours:  # the running ones, so that later tests find free workers
            system.delete(f"/jobs/{job['id']}")

    assert cli.returncode == 1, stdout + stderr
    assert "interrupted: cancelling" in stderr
    lines = result_file(tmp_path)
    assert len(lines) == 8 and {r["job id"] for r in lines} == {j["id"] for j in ours}
    by_id = {r["job id"]: r for r in lines}
    for job_id in queued:
        assert by_id[job_id]["status"] == "canceled", by_id[job_id]
        assert by_id[job_id]["error"].startswith("canceled: ")
        assert system.get(f"/jobs/{job_id}").json()["status"] == "canceled"
    for line in lines:
        if line["job id"] not in queued:  # running when interrupted: left to run
            assert line["status"] in ("started", "finished"), line
    assert f"{len(queued)} queued jobs cancelled" in stdout
    deadline = time.monotonic() + 30
    while (
        any(system.get(f"/jobs/{j['id']}").json()["status"] not in FINAL for j in ours)
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)


def test_a_device_the_server_refuses_is_reported_on_its_own_row(
    system: httpx.Client, controller_url: str, lab: dict[str, Any], tmp_path: Path
) -> None:
    # "localhost" is another host than 127.0.0.1, so rows 2 and 3 share one bulk request:
    # the refusal (a serial-port device type, never contacted) must land on row 3 only.
    ios = [d for d in lab.values() if d.device_type == "cisco_ios"]
    path = write_csv(
        tmp_path / "devices.csv",
        ["Vendor", "IP", "Port", "User", "Pass"],
        [
            ["cisco", ios[0].host, ios[0].port, "admin", ios[0].password],
            ["cisco_ios_serial", "localhost", 22, "admin", "x"],
            ["cisco", ios[1].host, ios[1].port, "admin", ios[1].password],
        ],
    )
    result = netpulse_exec(controller_url, tmp_path, str(path), "-c", "show clock")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "3 devices in 2 bulk requests" in result.stderr
    first, refused, third = result_file(tmp_path)
    assert (first["row"], first["status"], first["show clock: exit"]) == ("2", "finished", "0")
    assert (third["row"], third["status"], third["show clock: exit"]) == ("4", "finished", "0")
    assert (refused["row"], refused["device"], refused["status"]) == (
        "3",
        "localhost:22",
        "refused",
    )
    assert refused["job id"] == "" and "cisco_ios_serial" in refused["error"]
    assert refused["error"].startswith("refused: ")


def test_jobs_still_running_after_wait_are_left_to_run_and_marked(
    system: httpx.Client, controller_url: str, sshd: Any, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "hosts.csv", ["IP", "Port", "User"], [[sshd.host, sshd.port, sshd.username]]
    )
    started = time.monotonic()
    result = netpulse_exec(
        controller_url,
        tmp_path,
        str(path),
        "-c",
        "sleep 6",
        "--driver",
        "paramiko",
        "--connection-args",
        f'{{"key_filename": "{sshd.key_filename}"}}',
        "--wait",
        "2",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 6
    (line,) = result_file(tmp_path)
    assert line["status"] in ("queued", "started"), line
    assert "left to run" in line["error"] and "--wait 2 s passed" in line["error"]
    job = system.get(f"/jobs/{line['job id']}", params={"wait": 30}).json()
    assert job["status"] == "finished"  # not cancelled: --wait only stops following


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-c", "show clock", "--config", "x"], "one of the two"),
        (["--config", "x", "--webhook", "not a url"], "webhook"),
        (["-c", "show clock", "--save"], "--save saves the configuration"),
        (["-c", "show clock", "--driver-args", "[1]"], "--driver-args: give a JSON object"),
    ],
)
def test_bad_options_are_exit_2_before_anything_is_sent(
    controller_url: str, tmp_path: Path, args: list[str], says: str
) -> None:
    path = write_csv(
        tmp_path / "d.csv", ["Vendor", "IP", "User", "Pass"], [["cisco", "127.0.0.1", "u", "p"]]
    )
    result = netpulse_exec(controller_url, tmp_path, str(path), *args)
    assert result.returncode == 2 and says in " ".join(result.stderr.split()), result.stderr
