"""The paramiko driver's cost per command on a Linux host, against plain paramiko.

One real OpenSSH server on 127.0.0.1 (tests/support/sshd.py, needs root), one warm session
each: the baseline runs ``exec_command`` + ``recv_exit_status`` with paramiko alone; the
driver runs the same command through ``ParamikoDriver.send`` (shell building, the channel
loop that can answer prompts, masking). ``sudo`` is not measured: its cost is sudo's own.
Rounds alternate the two so that load hits both alike.

Run: ``.venv/bin/python bench/linux_shell.py`` (writes the ``linux-shell`` section of
bench/RESULTS.md). Target: the driver's median per command within 1.2x of plain paramiko.
"""

from __future__ import annotations

import os
import tempfile
import time

import paramiko
from common import log, median, percentile, table, write_section

from netpulse.models.request import ConnectionArgs, ExecutionRequest
from netpulse.plugins.drivers.paramiko.driver import ParamikoDriver
from tests.support.sshd import OpenSSHServer

# The server's client key lives in a temporary directory: let the driver read keys there.
os.environ.setdefault("NETPULSE_DRIVERS__FILES_DIR", os.path.realpath(tempfile.gettempdir()))

COMMANDS = 200
ROUNDS = 5
TARGET_RATIO = 1.2


def plain(client: paramiko.SSHClient, command: str) -> float:
    started = time.perf_counter()
    _, stdout, stderr = client.exec_command(command)
    stdout.read()
    stderr.read()
    stdout.channel.recv_exit_status()
    return time.perf_counter() - started


def through_driver(driver: ParamikoDriver, req: ExecutionRequest) -> float:
    started = time.perf_counter()
    [row] = driver.send(["echo ok"], req)
    assert row.exit_status == 0 and row.stdout.strip() == "ok", row
    return time.perf_counter() - started


def main() -> None:
    began = time.monotonic()
    with OpenSSHServer() as server:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(**server.connect_kwargs())
        args = ConnectionArgs.model_validate(
            {
                "host": server.host,
                "port": server.port,
                "username": server.username,
                "key_filename": server.key_filename,
            }
        )
        req = ExecutionRequest.model_validate(
            {"driver": "paramiko", "connection_args": args.model_dump(), "command": "echo ok"}
        )
        driver = ParamikoDriver(args)
        driver.connect()
        base: list[float] = []
        ours: list[float] = []
        try:
            for round_no in range(ROUNDS):
                base += [plain(client, "echo ok") for _ in range(COMMANDS // ROUNDS)]
                ours += [through_driver(driver, req) for _ in range(COMMANDS // ROUNDS)]
                log(f"round {round_no + 1}/{ROUNDS}")
        finally:
            driver.disconnect()
            client.close()
    ratio = median(ours) / median(base)
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    rows = [
        [
            f"`echo ok` on a warm session, {COMMANDS} commands each, alternating rounds",
            f"plain paramiko median {median(base) * 1000:.2f} ms (p95 "
            f"{percentile(base, 95) * 1000:.2f}); driver median {median(ours) * 1000:.2f} ms "
            f"(p95 {percentile(ours, 95) * 1000:.2f})",
            f"ratio **{ratio:.3f}**",
            f"<= {TARGET_RATIO}",
            verdict,
        ]
    ]
    write_section(
        "linux-shell",
        "Linux hosts: the paramiko driver per command (bench/linux_shell.py)",
        time.monotonic() - began,
        table(["Benchmark", "Measured", "Result", "Target", "Verdict"], rows),
        "- Both on one OpenSSH server on 127.0.0.1 (tests/support/sshd.py), key login; the "
        "driver's path includes building the shell command and the channel loop that reads "
        "both streams (and would answer `expect_map` prompts).",
    )
    log(f"ratio {ratio:.3f} ({verdict})")


if __name__ == "__main__":
    main()
