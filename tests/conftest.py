"""Session fixtures: a real redis-server, NetPulse's processes, lab devices, receivers.

Everything listens on 127.0.0.1 only. The NetPulse processes read their settings from the
environment set here, as they would in production.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq import Worker

from netpulse.runtime.ports import free_port
from netpulse.runtime.redis_server import RedisServer
from tests.support import processes
from tests.support.receiver import Receiver

API_KEY = "test-api-key-0123456789"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FIFO_WORKERS = 4
#: `drivers.files_dir` of every NetPulse process the tests start, and of the tests' own
#: in-process requests (which validate driver options with this process's settings).
DEVICE_FILES_DIR = str(Path(tempfile.gettempdir()).resolve())
os.environ.setdefault("NETPULSE_DRIVERS__FILES_DIR", DEVICE_FILES_DIR)


@pytest.fixture(scope="session")
def tmp_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("netpulse")


@pytest.fixture(scope="session")
def redis_url(tmp_session: Path) -> Iterator[str]:
    server = RedisServer(data_dir=tmp_session / "redis", appendonly=True)
    (tmp_session / "redis").mkdir(exist_ok=True)
    url = server.start()
    yield url
    server.stop()


ROOT = Path(__file__).resolve().parent.parent


def _install_test_plugins(tmp_session: Path) -> Path:
    """Register tests/plugins' caller through an entry point, as a third-party package would."""
    site = tmp_session / "site"
    dist = site / "netpulse_test_callers-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: netpulse-test-callers\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[netpulse.webhooks]\nrecording = netpulse_test_callers:RecordingCaller\n"
    )
    return site


@pytest.fixture(scope="session")
def netpulse_env(redis_url: str, tmp_session: Path) -> dict[str, str]:
    """The environment every NetPulse process of the session runs with."""
    plugin_path = _install_test_plugins(tmp_session)
    env = {
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), str(plugin_path), str(ROOT / "tests" / "plugins")]
        ),
        "NETPULSE_REDIS__URL": redis_url,
        "NETPULSE_SERVER__API_KEY": API_KEY,
        "NETPULSE_DATA_DIR": str(tmp_session),
        "NETPULSE_WEBHOOKS__ALLOW_CIDRS": '["127.0.0.0/8"]',
        "NETPULSE_WEBHOOKS__SIGNING_SECRET": SIGNING_SECRET,
        "NETPULSE_WEBHOOKS__ORIGIN_BACKOFF_SECONDS": "2",
        "NETPULSE_LOG_LEVEL": "INFO",
        # A detached task taken by a follower that is then killed is due again this soon.
        "NETPULSE_DETACHED__LEASE_SECONDS": "5",
        # A host gone this long fails its detached tasks (the shortest allowed).
        "NETPULSE_DETACHED__HOST_LOST_SECONDS": "5",
        # A node lets go of a device without session or job this soon (tests/integration/
        # test_device_bookkeeping.py).
        "NETPULSE_NODE__DEVICE_RELEASE_SECONDS": "2",
        # Driver options naming a file must point inside this directory. The test SSH
        # servers (tests/support/sshd.py) keep their client keys in `tempfile.mkdtemp()`
        # directories, so the temporary directory is the files directory here.
        "NETPULSE_DRIVERS__FILES_DIR": DEVICE_FILES_DIR,
    }
    os.environ.update(env)
    from netpulse.config import get_settings

    get_settings.cache_clear()
    return {**os.environ, **env}


@pytest.fixture(scope="session")
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


@pytest.fixture(scope="session")
def fifo_workers(netpulse_env: dict[str, str], redis: Redis, tmp_session: Path) -> Iterator[None]:
    process = processes.start(
        ["worker", "fifo", "--size", str(FIFO_WORKERS)], netpulse_env, tmp_session / "fifo.log"
    )
    processes.wait_until(
        lambda: len(Worker.all(connection=redis)) >= FIFO_WORKERS, 60, "FIFO workers"
    )
    yield
    processes.stop(process)


class ProcessHandle:
    """A NetPulse process a test may stop and start again (restart survival)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process = None

    def start(self) -> None:
        self.process = processes.start(self.args, self.env, self.log)

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process)
            self.process = None


NODE_NAME = "test-node-1"


@pytest.fixture(scope="session")
def node(netpulse_env: dict[str, str], redis: Redis, tmp_session: Path) -> Iterator[ProcessHandle]:
    """One worker node (warm sessions for pinned jobs)."""
    from netpulse.nodes.directory import NodeDirectory

    handle = ProcessHandle(
        ["worker", "node", "--name", NODE_NAME, "--threads", "8"],
        netpulse_env,
        tmp_session / "node.log",
    )
    handle.start()
    directory = NodeDirectory(redis)
    processes.wait_until(
        lambda: any(n.name == NODE_NAME and n.alive for n in directory.nodes()), 60, "the node"
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def delivery_service(netpulse_env: dict[str, str], tmp_session: Path) -> Iterator[ProcessHandle]:
    handle = ProcessHandle(["worker", "webhooks"], netpulse_env, tmp_session / "webhooks.log")
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def detached_follower(netpulse_env: dict[str, str], tmp_session: Path) -> Iterator[ProcessHandle]:
    handle = ProcessHandle(["worker", "detached"], netpulse_env, tmp_session / "detached.log")
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def audit_archiver(netpulse_env: dict[str, str], tmp_session: Path) -> Iterator[ProcessHandle]:
    handle = ProcessHandle(["worker", "audit"], netpulse_env, tmp_session / "audit.log")
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def controller_url(netpulse_env: dict[str, str], tmp_session: Path) -> Iterator[str]:
    port = free_port()
    process = processes.start(
        ["controller", "--host", "127.0.0.1", "--port", str(port)],
        netpulse_env,
        tmp_session / "controller.log",
    )
    url = f"http://127.0.0.1:{port}"
    processes.wait_until(lambda: processes.http_ready(url), 60, "the controller")
    yield url
    processes.stop(process)


@pytest.fixture(scope="session")
def api(controller_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the controller, with the API key."""
    with httpx.Client(
        base_url=controller_url, headers={"X-API-KEY": API_KEY}, timeout=90
    ) as client:
        yield client


@pytest.fixture(scope="session")
def system(
    api: httpx.Client,
    fifo_workers: None,
    node: ProcessHandle,
    delivery_service: ProcessHandle,
    detached_follower: ProcessHandle,
    audit_archiver: ProcessHandle,
) -> httpx.Client:
    """The whole system running: controller, FIFO workers, webhook delivery, the detached
    follower and the audit archiver."""
    return api


@pytest.fixture(scope="session")
def lab() -> Iterator[dict[str, object]]:
    """Simulated devices (FakeNOS) by name."""
    from netpulse.lab.fleet import LabFleet

    fleet = LabFleet()
    devices = fleet.start()
    yield {d.name: d for d in devices}
    fleet.stop()


@pytest.fixture(scope="session")
def sshd() -> Iterator[object]:
    from tests.support.sshd import OpenSSHServer

    with OpenSSHServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def private_redis(netpulse_env: dict[str, str]) -> Iterator[str]:
    """A Redis of the test's own, for tests that run the delivery service in-process (the
    session's delivery process would otherwise claim their deliveries)."""
    with RedisServer(appendonly=False) as server:
        yield server.url
