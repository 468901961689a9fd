"""The `netpulse` command: run the whole system, or each of its processes, and try it."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import typer

from netpulse.cli.bulk import exec_command
from netpulse.cli.common import console, settings_or_exit
from netpulse.cli.credentials import credential_app
from netpulse.cli.detached import detached_app
from netpulse.cli.keys import key_app
from netpulse.config import ConfigError, SupervisorSettings

app = typer.Typer(
    help="NetPulse: network devices and Linux hosts as a REST API.", no_args_is_help=True
)
worker_app = typer.Typer(help="Run one kind of worker process.", no_args_is_help=True)
webhook_app = typer.Typer(help="Webhook tools.", no_args_is_help=True)
app.add_typer(worker_app, name="worker")
app.add_typer(webhook_app, name="webhook")
app.add_typer(credential_app, name="credential")
app.add_typer(key_app, name="key")
app.add_typer(detached_app, name="detached")
app.command("exec")(exec_command)

_settings = settings_or_exit


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def up(
    lab: bool = typer.Option(False, "--lab", help="Also start simulated devices (FakeNOS)."),
    host: str = typer.Option(None, help="Controller address (default from settings)."),
    port: int = typer.Option(None, help="Controller port (default from settings)."),
    workers: int = typer.Option(None, help="FIFO worker processes (default from settings)."),
    data_dir: Path = typer.Option(None, help="Where Redis, the API key and logs live."),
    nodes: str = typer.Option(
        None,
        help="Worker node processes: a number, or auto (one per CPU core; the default, "
        "supervisor.nodes).",
    ),
) -> None:
    """Run everything on this machine: Redis (if none is configured), controller, workers,
    webhook delivery, and optionally the lab. Ctrl-C stops it all."""
    from netpulse.cli.supervisor import Supervisor

    settings = _settings()
    _logging(settings.log_level)
    node_count = None
    if nodes is not None:
        try:
            wanted: int | str = nodes if nodes == "auto" else int(nodes)
            node_count = SupervisorSettings(nodes=wanted).node_count()
        except ValueError:  # pydantic's ValidationError is one
            console.print(f"[red]--nodes must be auto or 1 to 64, not {nodes!r}[/red]")
            raise typer.Exit(2) from None
    supervisor = Supervisor(
        settings,
        lab=lab,
        host=host,
        port=port,
        workers=workers,
        data_dir=data_dir,
        nodes=node_count,
    )
    raise typer.Exit(supervisor.run(console))


@app.command("encryption-key")
def encryption_key() -> None:
    """Print a new key for security.encryption_keys (put it first to rotate; keep the old
    ones after it until the jobs and deliveries sealed with them are gone)."""
    from netpulse.security.sealing import new_key

    typer.echo(new_key())


@app.command()
def controller(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
) -> None:
    """Run the HTTP API (FastAPI under uvicorn)."""
    import uvicorn

    from netpulse.api.app import create_app

    settings = _settings()
    _logging(settings.log_level)
    try:
        application = create_app(settings)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    uvicorn.run(
        application,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@worker_app.command("fifo")
def worker_fifo(
    size: int = typer.Option(None, help="Number of worker processes."),
    burst: bool = typer.Option(False, help="Exit when the queue is empty."),
) -> None:
    """Run the FIFO device worker pool (RQ workers)."""
    from netpulse.worker.pool import run_pool

    settings = _settings()
    _logging(settings.log_level)
    run_pool(settings, size=size, burst=burst)


@worker_app.command("node")
def worker_node(
    name: str = typer.Option(None, help="Node name (default: hostname-pid-random)."),
    capacity: int = typer.Option(None, help="Devices this node may hold."),
    threads: int = typer.Option(None, help="Jobs this node runs at once."),
) -> None:
    """Run a worker node: warm device sessions for pinned jobs."""
    from netpulse.nodes.process import NodeNameInUse, run_node

    settings = _settings()
    _logging(settings.log_level)
    try:
        run_node(settings, name=name, capacity=capacity, threads=threads)
    except NodeNameInUse as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@worker_app.command("webhooks")
def worker_webhooks(
    processes: int = typer.Option(
        1,
        min=1,
        max=64,
        help="Delivery processes (one event loop each, one core each at full load); they "
        "share the work through Redis.",
    ),
) -> None:
    """Run the webhook delivery service."""
    from netpulse.webhooks.delivery.processes import run_delivery_processes

    settings = _settings()
    _logging(settings.log_level)
    if settings.webhooks.niceness:  # when CPU is short, device workers go first
        os.nice(settings.webhooks.niceness)
    raise typer.Exit(run_delivery_processes(settings, processes))


@worker_app.command("detached")
def worker_detached() -> None:
    """Run the detached-task follower: pushes the tasks' logs, records their ends."""
    from netpulse.detached.follower import Follower
    from netpulse.runtime.redis_conn import connect

    settings = _settings()
    _logging(settings.log_level)
    follower = Follower(connect(settings.redis_url), settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: follower.stop.set())
    follower.run()


@worker_app.command("audit")
def worker_audit(
    name: str = typer.Option(
        None, help="Consumer name (default: the host name; a restart takes over its records)."
    ),
) -> None:
    """Run the audit archiver: moves the audit stream into the database (docs/audit.md)."""
    import threading

    from netpulse.audit.archiver import serve

    settings = _settings()
    _logging(settings.log_level)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    serve(settings, stop, name)


@app.command("lab")
def lab_command(
    as_json: bool = typer.Option(False, "--json", help="Print the inventory as JSON."),
) -> None:
    """Start simulated devices on loopback and print their inventory until Ctrl-C."""
    from netpulse.cli.supervisor import print_inventory
    from netpulse.lab.fleet import LabFleet

    fleet = LabFleet()
    devices = fleet.start()
    try:
        if as_json:
            print(json.dumps([d.connection_args() | {"name": d.name} for d in devices]))
            sys.stdout.flush()
        else:
            print_inventory(console, devices)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fleet.stop()


@webhook_app.command("listen")
def webhook_listen(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(9999),
    secret: str = typer.Option(None, help="whsec_... secret to verify signatures with."),
    public_key: str = typer.Option(
        None, help="whpk_... public key to verify v1a (Ed25519) signatures with."
    ),
) -> None:
    """Run a local receiver that prints each event and whether its signature verifies."""
    from netpulse.cli.listener import run_listener

    run_listener(host, port, secret, public_key)


@webhook_app.command("signing-key")
def webhook_signing_key() -> None:
    """Print a new Ed25519 key for webhooks.asymmetric_signing_keys (and its public key)."""
    from netpulse.webhooks.signing import generate_signing_key, public_key_of

    key = generate_signing_key()
    typer.echo(key)
    typer.echo(f"public key: {public_key_of(key)}", err=True)


@app.command("run")
def run_job(
    host: str = typer.Option(..., help="Device address."),
    command: list[str] = typer.Option(..., "--command", "-c", help="Command (repeatable)."),
    device_type: str = typer.Option("cisco_ios"),
    port: int = typer.Option(22),
    username: str = typer.Option(None),
    password: str = typer.Option(None, envvar="NETPULSE_DEVICE_PASSWORD"),
    secret: str = typer.Option(
        None, envvar="NETPULSE_DEVICE_SECRET", help="Enable password, if the device needs one."
    ),
    driver: str = typer.Option("netmiko"),
    enable: bool = typer.Option(False, help="Enter enable mode first."),
    url: str = typer.Option("http://127.0.0.1:9000", envvar="NETPULSE_URL"),
    api_key: str = typer.Option(..., envvar="NETPULSE_API_KEY"),
    api_key_header: str = typer.Option("X-API-KEY", envvar="NETPULSE_API_KEY_NAME"),
    wait: float = typer.Option(60, help="Seconds to wait for the result."),
) -> None:
    """Submit a job to a running NetPulse and print its result."""
    import httpx

    body = {
        "driver": driver,
        "connection_args": {
            "host": host,
            "port": port,
            "device_type": device_type,
            "username": username,
            "password": password,
            "secret": secret,
        },
        "command": command,
        "enable_mode": enable,
    }
    headers = {api_key_header: api_key}
    with httpx.Client(base_url=url, headers=headers, timeout=wait + 10) as client:
        reply = client.post("/device/exec", json=body)
        if reply.status_code >= 400:
            console.print(f"[red]{reply.status_code}[/red] {reply.text}")
            raise typer.Exit(1)
        job = reply.json()
        deadline = time.monotonic() + wait
        while job["status"] not in ("finished", "failed", "stopped", "canceled"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            job = client.get(f"/jobs/{job['id']}", params={"wait": min(left, 60)}).json()
    result = job.get("result") or {}
    for item in result.get("retval") or []:
        console.rule(f"{item['command']} (exit {item['exit_status']})")
        console.print(item["stdout"], markup=False, highlight=False)
        if item.get("stderr"):
            console.print(f"[red]{item['stderr']}[/red]", highlight=False)
    if result.get("error"):
        console.print(f"[red]{result['error']['type']}: {result['error']['message']}[/red]")
    console.print(f"job {job['id']}: {job['status']}")
    ok = job["status"] == "finished" and all(
        i["exit_status"] == 0 for i in result.get("retval") or []
    )
    raise typer.Exit(0 if ok else 1)
