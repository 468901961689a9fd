"""The built-in credential store (provider ``local``) against the running system: the
``/credentials`` API, jobs, bulk jobs and connection tests that log in with a stored
credential, the public client, the ``netpulse credential`` command, and that no stored value
is ever readable in Redis, its AOF files or the processes' logs.

Every credential a test makes has a unique name and is deleted after the test (the session's
system is shared).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import netpulse_sdk
import pytest
from redis import Redis

from netpulse.keys import CREDENTIAL_INDEX, credential_key
from netpulse.runtime.ports import free_port
from netpulse.security.sealing import PREFIX, new_key
from tests.conftest import API_KEY
from tests.integration.helpers import device, run, submit, wait_job, wait_started
from tests.integration.test_secrets_at_rest import readable_forms, values_of

ROOT = Path(__file__).resolve().parents[2]
LOGIN = ("username", "password", "secret")

NewName = Callable[[str], str]


@pytest.fixture
def new_name(api: httpx.Client) -> Iterator[NewName]:
    """Unique credential names; every one is deleted after the test (404s ignored)."""
    made: list[str] = []

    def make(label: str) -> str:
        name = f"t-{label}-{secrets.token_hex(4)}"
        made.append(name)
        return name

    yield make
    for name in made:
        reply = api.delete(f"/credentials/{name}")
        assert reply.status_code in (204, 404), reply.text


def put(api: httpx.Client, name: str, **values: str) -> dict[str, Any]:
    reply = api.put(f"/credentials/{name}", json=values)
    assert reply.status_code == 200, reply.text
    return reply.json()


def local(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": "local", "ref": name, **extra}


def lab_login(dev: Any) -> dict[str, str]:
    return {"username": dev.username, "password": dev.password, "secret": dev.secret}


def without_login(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in LOGIN}


def ios_job(dev: Any, credential: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """``show version`` in enable mode on the lab IOS device, with no login of its own."""
    body: dict[str, Any] = {
        "driver": "netmiko",
        "connection_args": without_login(dev.connection_args()),
        "command": "show version",
        "enable_mode": True,
        **extra,
    }
    if credential is not None:
        body["credential"] = credential
    return body


def assert_shows_cisco(job: dict[str, Any]) -> None:
    assert job["status"] == "finished", job
    [item] = job["result"]["retval"]
    assert item["exit_status"] == 0 and "Cisco" in item["stdout"], item


def error_of(job: dict[str, Any]) -> dict[str, str]:
    assert job["status"] == "failed", job
    return job["result"]["error"]


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``netpulse ARGS`` as a user runs it (secrets on stdin only)."""
    return subprocess.run(
        [sys.executable, "-m", "netpulse", *args],
        input=stdin,
        env={**env, "COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def private_key_lines(key_file: str) -> list[str]:
    """The lines of an OpenSSH private key that hold key material (the first base64 line is
    the format's fixed header, the same in every such key)."""
    body = [ln for ln in Path(key_file).read_text().splitlines() if ln and "-----" not in ln]
    return body[1:]


# -- the API ---------------------------------------------------------------------------------


def test_put_list_replace_delete_never_show_a_value(api: httpx.Client, new_name: NewName) -> None:
    name = new_name("crud")
    token = secrets.token_hex(8)
    password, secret = f"pw-{token}", f"sec-{token}"

    reply = api.put(
        f"/credentials/{name}", json={"username": "ops", "password": password, "secret": secret}
    )
    assert reply.status_code == 200, reply.text
    first = reply.json()
    assert first["name"] == name and first["fields"] == ["password", "secret", "username"]
    assert first["created_at"] == first["updated_at"]
    listing = api.get("/credentials")
    assert listing.status_code == 200
    [shown] = [c for c in listing.json() if c["name"] == name]
    assert shown == first
    for text in (reply.text, listing.text):
        assert password not in text and secret not in text and token not in text

    # Replaced whole (the secret is gone), made when it was first made, changed now.
    second = put(api, name, username="ops2", password=f"pw2-{token}")
    assert second["fields"] == ["password", "username"]
    assert second["created_at"] == first["created_at"]
    assert datetime.fromisoformat(second["updated_at"]) > datetime.fromisoformat(
        first["updated_at"]
    )

    gone = api.delete(f"/credentials/{name}")
    assert gone.status_code == 204 and gone.content == b""
    again = api.delete(f"/credentials/{name}")
    assert again.status_code == 404 and name in again.json()["detail"]
    assert name not in [c["name"] for c in api.get("/credentials").json()]


def test_a_put_without_a_value_or_with_a_bad_name_is_refused(
    api: httpx.Client, new_name: NewName
) -> None:
    name = new_name("refused")
    reply = api.put(f"/credentials/{name}", json={})
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and "at least one of username, password" in detail
    reply = api.put(f"/credentials/{name}", json={"username": None, "password": None})
    assert reply.status_code == 422, reply.text
    # An unknown field is refused, and the value sent is not echoed back.
    token = secrets.token_hex(8)
    reply = api.put(f"/credentials/{name}", json={"password": f"pw-{token}", "token": token})
    assert reply.status_code == 422 and token not in reply.text
    assert name not in [c["name"] for c in api.get("/credentials").json()]

    for bad in ("-leading-dash", "a" * 129, "sp%20ace", "semi;colon"):
        reply = api.put(f"/credentials/{bad}", json={"username": "u"})
        assert reply.status_code == 422, (bad, reply.text)
        assert reply.json()["detail"][0]["loc"] == ["path", "name"], reply.text
        assert api.delete(f"/credentials/{bad}").status_code == 422
    assert api.get("/credentials").status_code == 200


def test_the_credentials_api_needs_the_api_key(controller_url: str) -> None:
    with httpx.Client(base_url=controller_url, timeout=30) as anonymous:
        assert anonymous.get("/credentials").status_code in (401, 403)
        assert anonymous.put("/credentials/x", json={"username": "u"}).status_code in (401, 403)
        assert anonymous.delete("/credentials/x").status_code in (401, 403)


# -- jobs ------------------------------------------------------------------------------------


def test_a_netmiko_job_logs_in_with_a_stored_credential(
    system: httpx.Client, lab: dict, new_name: NewName
) -> None:
    dev = device(lab, "cisco_ios")
    name = new_name("ios")
    put(system, name, **lab_login(dev))
    assert_shows_cisco(run(system, ios_job(dev, local(name))))
    # The provider's name may be left out: `local` is the default.
    assert_shows_cisco(run(system, ios_job(dev, {"ref": name}, queue_strategy="fifo")))


def test_a_job_naming_a_missing_credential_is_refused_at_submission(
    system: httpx.Client, lab: dict, new_name: NewName
) -> None:
    dev = device(lab, "cisco_ios")
    missing = new_name("missing")
    reply = system.post("/device/exec", json=ios_job(dev, local(missing)))
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and f"no stored credential named {missing!r}" in detail

    reply = system.post("/device/exec", json=ios_job(dev, {"name": "nope", "ref": missing}))
    assert reply.status_code == 422
    assert "unknown credential provider 'nope'" in reply.json()["detail"]
    assert "local" in reply.json()["detail"]

    reply = system.post("/device/exec", json=ios_job(dev, local("../etc/passwd")))
    assert reply.status_code == 422 and "not a stored credential's name" in reply.text

    # What only other stores have is refused, not ignored (the store keeps no versions).
    name = new_name("versioned")
    put(system, name, **lab_login(dev))
    reply = system.post("/device/exec", json=ios_job(dev, local(name, version=1)))
    assert reply.status_code == 422
    assert "credential.version do not apply to the local provider" in reply.json()["detail"]


def test_a_credential_deleted_while_its_job_waits_fails_the_job_as_credential_error(
    system: httpx.Client, sshd: Any, new_name: NewName
) -> None:
    """The job waits behind a running job of the same pinned device (one at a time per
    device), held open until the test lets it go: the credential is gone when it starts."""
    name = new_name("gone")
    put(system, name, username=sshd.username)
    gate = Path(tempfile.gettempdir()) / f"np-gate-{secrets.token_hex(6)}"
    target = {"host": sshd.host, "port": sshd.port, "key_filename": str(sshd.key_filename)}
    blocker = submit(
        system,
        {
            "driver": "paramiko",
            "connection_args": {**target, "username": sshd.username},
            "command": f"while [ ! -e {gate} ]; do sleep 0.05; done; echo released",
            "queue_strategy": "pinned",
            "execution_timeout": 60,
        },
    )
    try:
        wait_started(system, blocker["id"])
        waiting = submit(
            system,
            {
                "driver": "paramiko",
                "connection_args": target,
                "credential": local(name),
                "command": "echo never",
                "queue_strategy": "pinned",
            },
        )
        assert system.get(f"/jobs/{waiting['id']}").json()["status"] == "queued"
        assert system.delete(f"/credentials/{name}").status_code == 204
    finally:
        gate.touch()
    try:
        assert wait_job(system, blocker["id"])["status"] == "finished"
        error = error_of(wait_job(system, waiting["id"]))
    finally:
        gate.unlink()
    assert error["type"] == "credential_error", error
    assert f"no stored credential named {name!r}" in error["message"]


def test_the_stored_password_is_used_unless_the_request_gives_its_own(
    system: httpx.Client, lab: dict, new_name: NewName
) -> None:
    dev = device(lab, "cisco_ios")
    name = new_name("wrongpw")
    wrong = f"wrong-{secrets.token_hex(6)}"
    put(system, name, username=dev.username, password=wrong, secret=dev.secret)

    failed = run(system, ios_job(dev, local(name)))
    error = error_of(failed)
    assert error["type"] == "authentication", error
    assert wrong not in str(failed)

    # A value the request gives itself wins over the stored one.
    own = ios_job(dev, local(name))
    own["connection_args"]["password"] = dev.password
    assert_shows_cisco(run(system, own))

    # field_mapping: the password read from the credential's `secret` field.
    assert_shows_cisco(run(system, ios_job(dev, local(name, field_mapping={"password": "secret"}))))


def mixed_credential(api: httpx.Client, name: str, dev: Any, sshd: Any) -> None:
    """The lab device's login plus a private key (for the drivers that take key text)."""
    put(api, name, **lab_login(dev), pkey=Path(sshd.key_filename).read_text())


def test_a_connection_test_fills_only_what_the_driver_takes(
    system: httpx.Client, lab: dict, sshd: Any, new_name: NewName
) -> None:
    """One credential with a password and a private key: netmiko (which takes no key
    text) logs in with the password, paramiko with the key."""
    dev = device(lab, "cisco_ios")
    name = new_name("mixed-test")
    mixed_credential(system, name, dev, sshd)
    reply = system.post(
        "/device/test",
        json={
            "driver": "netmiko",
            "connection_args": without_login(dev.connection_args()),
            "credential": local(name),
        },
    )
    assert reply.status_code == 200 and reply.json()["success"] is True, reply.text
    put(system, name, username=sshd.username, pkey=Path(sshd.key_filename).read_text())
    reply = system.post(
        "/device/test",
        json={
            "driver": "paramiko",
            "connection_args": {"host": sshd.host, "port": sshd.port},
            "credential": local(name),
        },
    )
    assert reply.status_code == 200 and reply.json()["success"] is True, reply.text


def test_a_netmiko_job_ignores_the_private_key_of_its_credential(
    system: httpx.Client, lab: dict, sshd: Any, new_name: NewName
) -> None:
    dev = device(lab, "cisco_ios")
    name = new_name("mixed-job")
    mixed_credential(system, name, dev, sshd)
    assert_shows_cisco(run(system, ios_job(dev, local(name))))


# -- bulk ------------------------------------------------------------------------------------


def test_bulk_shares_a_credential_a_device_may_name_its_own_and_a_missing_one_fails_alone(
    system: httpx.Client, lab: dict, new_name: NewName
) -> None:
    ios = sorted((d for d in lab.values() if d.device_type == "cisco_ios"), key=lambda d: d.name)
    one, two = ios[0], ios[1]
    shared, own, wrong, missing = (new_name(x) for x in ("shared", "own", "wrong", "nothere"))
    put(system, shared, **lab_login(one))
    put(system, own, **lab_login(two))
    put(system, wrong, username=one.username, password=f"bad-{secrets.token_hex(4)}")
    body = {
        "driver": "netmiko",
        "connection_args": {"device_type": "cisco_ios"},
        "credential": local(shared),
        "command": "show version",
        "enable_mode": True,
        "devices": [
            {"host": one.host, "port": one.port},
            {"host": two.host, "port": two.port, "credential": local(own), "command": "show clock"},
            {"host": one.host, "port": one.port, "credential": local(wrong), "command": "show ip"},
            {"host": two.host, "port": two.port, "credential": local(missing)},
        ],
    }
    reply = system.post("/device/bulk", json=body)
    assert reply.status_code == 201, reply.text
    answer = reply.json()
    [refused] = answer["failed"]
    assert (
        refused["host"] == two.host
        and f"no stored credential named {missing!r}" in (refused["reason"])
    )
    jobs = {tuple(job["command"]): wait_job(system, job["id"]) for job in answer["succeeded"]}
    assert set(jobs) == {("show version",), ("show clock",), ("show ip",)}
    assert_shows_cisco(jobs[("show version",)])  # the shared credential
    assert jobs[("show clock",)]["status"] == "finished", jobs[("show clock",)]  # its own
    # The device's own credential replaced the shared one: its wrong password was used.
    assert error_of(jobs[("show ip",)])["type"] == "authentication"


# -- connection tests ------------------------------------------------------------------------


def test_device_test_logs_in_with_a_credential_and_refuses_a_missing_one(
    system: httpx.Client, lab: dict, new_name: NewName
) -> None:
    dev = device(lab, "cisco_ios")
    name = new_name("devtest")
    put(system, name, **lab_login(dev))
    args = without_login(dev.connection_args())
    reply = system.post(
        "/device/test",
        json={"driver": "netmiko", "connection_args": args, "credential": local(name)},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["success"] is True, reply.json()

    wrong_name, wrong = new_name("devtest-wrong"), f"wrong-{secrets.token_hex(6)}"
    put(system, wrong_name, username=dev.username, password=wrong)
    reply = system.post(
        "/device/test",
        json={"driver": "netmiko", "connection_args": args, "credential": local(wrong_name)},
    )
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["success"] is False and answer["error_type"] == "authentication", answer
    assert wrong not in reply.text

    missing = new_name("devtest-missing")
    reply = system.post(
        "/device/test",
        json={"driver": "netmiko", "connection_args": args, "credential": local(missing)},
    )
    assert reply.status_code == 422, reply.text
    assert f"no stored credential named {missing!r}" in reply.json()["detail"]


# -- the public client -----------------------------------------------------------------------


def test_the_public_client_runs_and_tests_with_a_stored_credential(
    system: httpx.Client, controller_url: str, lab: dict, new_name: NewName
) -> None:
    dev = device(lab, "cisco_ios")
    name = new_name("sdk")
    put(system, name, **lab_login(dev))
    args = without_login(dev.connection_args())
    host = args.pop("host")
    with netpulse_sdk.NetPulseClient(base_url=controller_url, api_key=API_KEY) as client:
        job = client.run(
            devices=host,
            command="show version",
            driver="netmiko",
            connection_args=args,
            credential=local(name),
            enable_mode=True,
        )
        job.wait()
        [result] = job.results()
        assert result.ok, result
        assert "Cisco" in result.stdout
        tested = client.test_connection(
            host, connection_args=args, driver="netmiko", credential=local(name)
        )
        assert tested.ok is True, tested
    # A default credential: the client drops the login fields the request carries itself.
    with netpulse_sdk.NetPulseClient(
        base_url=controller_url, api_key=API_KEY, default_credential=local(name)
    ) as client:
        full = dev.connection_args()
        full.pop("host")
        full["password"] = "not-the-password"
        job = client.run(
            devices=host, command="show version", driver="netmiko", connection_args=full
        )
        job.wait()
        [result] = job.results()
        assert result.ok and "Cisco" in result.stdout, result


# -- the command line ------------------------------------------------------------------------


def test_the_cli_stores_lists_and_deletes_credentials_with_secrets_on_stdin_only(
    system: httpx.Client, lab: dict, netpulse_env: dict[str, str], new_name: NewName
) -> None:
    dev = device(lab, "cisco_ios")
    name = new_name("cli")
    token = secrets.token_hex(8)
    password, secret = f"clipw-{token}", f"clisec-{token}"
    argv = ["credential", "set", name, "--username", "ops", "--password-stdin", "--secret-stdin"]
    made = cli(netpulse_env, *argv, stdin=f"{password}\n{secret}\n")
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stdout.strip() == f"stored {name}: password, secret, username"
    listed = cli(netpulse_env, "credential", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [ln for ln in listed.stdout.splitlines() if ln.startswith(f"{name}\t")]
    assert line.split("\t")[1] == "password,secret,username"
    for shown in (" ".join(argv), made.stdout, made.stderr, listed.stdout, listed.stderr):
        assert token not in shown
    # What the command stored is what the API shows (the same store, the same Redis).
    [info] = [c for c in system.get("/credentials").json() if c["name"] == name]
    assert info["fields"] == ["password", "secret", "username"]

    # Replaced from the command line with the lab's login, a job logs in with it.
    login = f"{dev.password}\n{dev.secret}\n"
    replaced = cli(netpulse_env, *argv[:4], dev.username, *argv[5:], stdin=login)
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert_shows_cisco(run(system, ios_job(dev, local(name))))

    deleted = cli(netpulse_env, "credential", "delete", name)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted {name}"
    again = cli(netpulse_env, "credential", "delete", name)
    assert again.returncode == 1 and name in again.stdout + again.stderr


def test_the_cli_refuses_what_it_cannot_store(
    netpulse_env: dict[str, str], new_name: NewName, tmp_path: Path
) -> None:
    name = new_name("cli-refused")
    nothing = cli(netpulse_env, "credential", "set", name)
    assert nothing.returncode == 2 and "--username" in nothing.stdout + nothing.stderr
    no_stdin = cli(netpulse_env, "credential", "set", name, "--password-stdin", stdin="")
    assert no_stdin.returncode == 2 and "no password on stdin" in no_stdin.stdout
    bad = cli(netpulse_env, "credential", "set", "-x;y", "--username", "u")
    assert bad.returncode == 2
    missing_key = cli(
        netpulse_env, "credential", "set", name, "--pkey-file", str(tmp_path / "no-such-key")
    )
    assert missing_key.returncode == 2, missing_key.stdout + missing_key.stderr
    assert "no-such-key" in missing_key.stdout + missing_key.stderr
    assert "Traceback" not in missing_key.stdout + missing_key.stderr
    listed = cli(netpulse_env, "credential", "list")
    assert name not in listed.stdout


def test_the_cli_refuses_to_seal_with_a_key_the_system_does_not_have(
    api: httpx.Client, netpulse_env: dict[str, str], new_name: NewName, tmp_path: Path
) -> None:
    """Run with another data directory (so another ``encryption.key``) or other configured
    keys, the command would store what no job could open: it refuses, and makes no key."""
    put(api, new_name("cli-sealed-by-the-system"), username="u")
    name = new_name("cli-other-key")
    elsewhere = tmp_path / "elsewhere"
    for env in (
        {**netpulse_env, "NETPULSE_DATA_DIR": str(elsewhere)},
        {**netpulse_env, "NETPULSE_SECURITY__ENCRYPTION_KEYS": f'["{new_key()}"]'},
    ):
        refused = cli(env, "credential", "set", name, "--password-stdin", stdin="pw\n")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "encryption key" in refused.stdout and "Traceback" not in refused.stderr
    assert not (elsewhere / "encryption.key").exists()
    assert name not in [c["name"] for c in api.get("/credentials").json()]


def test_the_cli_says_when_redis_cannot_be_reached(
    netpulse_env: dict[str, str], new_name: NewName
) -> None:
    url = f"redis://:hidden-{secrets.token_hex(4)}@127.0.0.1:{free_port()}/0"
    env = {**netpulse_env, "NETPULSE_REDIS__URL": url}
    for args in (("set", new_name("cli-noredis"), "--username", "u"), ("list",)):
        failed = cli(env, "credential", *args)
        out = failed.stdout + failed.stderr
        assert failed.returncode == 1, out
        assert "cannot use the system's Redis at redis://:***@127.0.0.1" in out, out
        assert "hidden-" not in out and "Traceback" not in out


def test_a_private_key_stored_from_a_file_logs_a_paramiko_job_in(
    system: httpx.Client, sshd: Any, netpulse_env: dict[str, str], new_name: NewName
) -> None:
    name = new_name("pkey")
    made = cli(
        netpulse_env,
        "credential",
        "set",
        name,
        "--username",
        sshd.username,
        "--pkey-file",
        str(sshd.key_filename),
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stdout.strip() == f"stored {name}: pkey, username"
    job = run(
        system,
        {
            "driver": "paramiko",
            "connection_args": {"host": sshd.host, "port": sshd.port},
            "credential": local(name),
            "command": "echo logged-in-by-key",
        },
    )
    assert job["status"] == "finished", job
    assert job["result"]["retval"][0]["stdout"].strip() == "logged-in-by-key"


# -- secrets at rest -------------------------------------------------------------------------


def test_no_stored_credential_value_is_readable_at_rest(
    system: httpx.Client,
    redis: Redis,
    tmp_session: Path,
    sshd: Any,
    lab: dict,
    netpulse_env: dict[str, str],
    new_name: NewName,
) -> None:
    """After credentials are stored (API and command line) and used (jobs on a FIFO worker
    and on the node, a failed login, a connection test in the controller), none of their
    values is readable in any Redis key (every type; RQ's zlib data opened), in the AOF
    files, or in the logs of the processes."""
    token = secrets.token_hex(6)
    ssh_password, passphrase = f"sshpw-{token}", f"phrase-{token}"
    wrong_password, wrong_secret = f"wrongpw-{token}", f"wrongsec-{token}"
    cli_password = f"clipw-{token}"
    key_lines = private_key_lines(str(sshd.key_filename))
    assert key_lines, "the test key has no body"

    by_key, wrong, by_cli = new_name("rest-key"), new_name("rest-wrong"), new_name("rest-cli")
    put(
        system,
        by_key,
        username=sshd.username,
        password=ssh_password,
        pkey=Path(sshd.key_filename).read_text(),
        passphrase=passphrase,
    )
    dev = device(lab, "cisco_ios")
    put(system, wrong, username=dev.username, password=wrong_password, secret=wrong_secret)
    made = cli(netpulse_env, "credential", "set", by_cli, "--password-stdin", stdin=cli_password)
    assert made.returncode == 0, made.stdout + made.stderr

    target = {"host": sshd.host, "port": sshd.port}
    for strategy in ("fifo", "pinned"):
        job = run(
            system,
            {
                "driver": "paramiko",
                "connection_args": target,
                "credential": local(by_key),
                "command": "echo at-rest",
                "queue_strategy": strategy,
            },
        )
        assert job["status"] == "finished", job
    failed = run(system, ios_job(dev, local(wrong)))
    assert error_of(failed)["type"] == "authentication"
    tested = system.post(
        "/device/test",
        json={"driver": "paramiko", "connection_args": target, "credential": local(by_key)},
    )
    assert tested.status_code == 200 and tested.json()["success"] is True, tested.text

    wanted = [
        ssh_password,
        passphrase,
        wrong_password,
        wrong_secret,
        cli_password,
        *key_lines,
    ]
    # The credentials are in Redis, every value sealed.
    for name in (by_key, wrong, by_cli):
        stored: dict[bytes, bytes] = redis.hgetall(credential_key(name))  # type: ignore[assignment]
        values = [v.decode() for k, v in stored.items() if not k.startswith(b"_")]
        assert values and all(v.startswith(PREFIX) for v in values), stored
        assert redis.sismember(CREDENTIAL_INDEX, name)

    blobs: list[bytes] = []
    for key in redis.scan_iter(count=1000):
        for raw in values_of(redis, key):
            blobs.extend(readable_forms(raw))
    assert blobs, "the scan read nothing"
    for value in wanted:
        needle = value.encode()
        assert not any(needle in blob for blob in blobs), f"{value!r} is readable in Redis"

    aof_files = [p for p in (tmp_session / "redis").rglob("*") if p.is_file() and "aof" in p.name]
    assert aof_files, "the session Redis writes no AOF"
    aof = b"".join(p.read_bytes() for p in aof_files)
    assert credential_key(by_key).encode() in aof and PREFIX.encode() in aof  # it is there
    logs = list(tmp_session.glob("*.log"))
    assert {p.name for p in logs} >= {"controller.log", "fifo.log", "node.log"}
    for path in [*aof_files, *logs]:
        text = path.read_bytes()
        for value in wanted:
            assert value.encode() not in text, f"{value!r} is readable in {path.name}"
    for output in (made.stdout, made.stderr):
        assert cli_password not in output
