"""A fast simulated fleet: hundreds of SSH "devices" on loopback in one asyncio process.

FakeNOS stays the reference for device behaviour, but it echoes input one byte every 10 ms
and costs a thread per session, so it cannot show NetPulse's own overhead or hold 500
sessions. This simulator answers like a minimal Cisco IOS CLI (prompt ``<host>#``, paging and
width commands, ``show version``, ``show clock``, config mode, ``% Invalid input`` for lines
starting with ``bogus``) and runs ``exec`` requests (``echo`` prints its arguments), with no
artificial delay. Used by benchmarks; run it as ``python -m netpulse.lab.fastsim --count N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import asyncssh

USERNAME = "admin"
PASSWORD = "admin"

SHOW_VERSION = (
    "Cisco IOS Software, FastSim Software (X86_64_LINUX_IOSD), Version 17.3.1\n"
    "{host} uptime is 1 day, 2 hours, 3 minutes\n"
    "Processor board ID FSIM0001\n"
)


@dataclass(frozen=True)
class FastDevice:
    name: str
    host: str
    port: int
    device_type: str = "cisco_ios"
    username: str = USERNAME
    password: str = PASSWORD

    def connection_args(self) -> dict[str, object]:
        return {
            "device_type": self.device_type,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
        }


def answer(line: str, host: str, mode: list[str]) -> str:
    """The CLI's output for one line; ``mode`` holds the prompt suffix and is updated."""
    cmd = line.strip()
    if cmd in ("", "terminal length 0", "terminal width 511", "terminal no monitor"):
        return ""
    if cmd.startswith("bogus"):
        return "% Invalid input detected at '^' marker.\n"
    if cmd in ("configure terminal", "conf t"):
        mode[0] = "(config)#"
        return "Enter configuration commands, one per line.  End with CNTL/Z.\n"
    if cmd in ("end", "exit") and mode[0] != "#":
        mode[0] = "#"
        return ""
    if mode[0] != "#":
        return ""
    if cmd == "show version":
        return SHOW_VERSION.format(host=host)
    if cmd == "show clock":
        return datetime.now(UTC).strftime("*%H:%M:%S.%f UTC %a %b %d %Y") + "\n"
    if cmd.startswith("echo "):
        return cmd[5:] + "\n"
    if cmd in ("write memory", "copy running-config startup-config"):
        return "[OK]\n"
    return f"{cmd}: ok\n"


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USERNAME and password == PASSWORD


def _handler(hostname: str):
    async def handle(process: asyncssh.SSHServerProcess) -> None:
        if process.command is not None:
            mode = ["#"]
            process.stdout.write(answer(process.command, hostname, mode))
            process.exit(0)
            return
        mode = ["#"]
        process.stdout.write(f"{hostname}#")
        try:
            async for line in process.stdin:
                out = answer(line, hostname, mode)
                # The line is echoed here, as a real CLI echoes what is typed, then the output
                # and the prompt on a new line (an empty output still ends the line: several
                # RETURNs arriving at once must not glue prompts together).
                echo = line.rstrip("\r\n")
                process.stdout.write(f"{echo}\r\n" + (out or "\r\n") + f"{hostname}{mode[0]}")
        except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, ConnectionError):
            pass
        process.exit(0)

    return handle


async def serve(count: int, host: str, base_port: int, ready: asyncio.Event | None = None):
    """Start ``count`` devices on consecutive ports; return them and their servers."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    devices, servers = [], []
    for i in range(count):
        name = f"fast-{i + 1:04d}"
        server = await asyncssh.create_server(
            _Server,
            host,
            base_port + i,
            server_host_keys=[key],
            process_factory=_handler(name),
            # No asyncssh line editor: it builds a table of every printable character for each
            # new session (tens of ms of CPU), which on a small host competes with the worker
            # nodes a benchmark measures. The handler echoes each line itself.
            line_editor=False,
            keepalive_interval=0,
        )
        servers.append(server)
        devices.append(FastDevice(name=name, host=host, port=base_port + i))
    if ready is not None:
        ready.set()
    return devices, servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, default=22000)
    args = parser.parse_args()
    if not args.host.startswith("127."):
        parser.error("the simulator only listens on loopback (127.0.0.0/8)")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)

    async def run() -> None:
        devices, servers = await serve(args.count, args.host, args.base_port)
        print(json.dumps([asdict(d) for d in devices]), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for server in servers:
            server.close()

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
