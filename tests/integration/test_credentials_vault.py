"""The ``vault_kv`` credential provider against a loopback stand-in of Vault's HTTP API
(tests/support/vault_standin.py: no Vault server can be installed on the build machines).
hvac is not mocked: every read is real HTTP to 127.0.0.1.

The provider is first driven directly (KV v1 and v2, versions, AppRole, namespaces,
allowed_paths, the cache, each failure's message, bad options); the last tests run jobs
through a NetPulse of their own whose worker reads the login from the stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netpulse import credentials
from netpulse.config import ConfigError, load_settings
from netpulse.credentials import CredentialError, CredentialForbidden
from netpulse.errors import Unprocessable
from netpulse.models.credential import CredentialRef
from netpulse.plugins.credentials.vault_kv import VaultKvCredentials
from netpulse.runtime.ports import free_port
from netpulse.worker.pool_directory import PoolDirectory
from tests.integration.helpers import device, run
from tests.support import processes
from tests.support.stack import Stack
from tests.support.vault_standin import VaultStandin

TOKEN = "hvs.test-token-Q7zX2v"
ROLE_ID = "role-4f1c"
SECRET_ID = "secret-id-9b7e33d1"
#: Secret values the tests look for in every error message (they must never be there).
PASSWORD_V1 = "pw-first-8f3a1c"
PASSWORD_V2 = "pw-second-5d92e0"
ADMIN_PASSWORD = "pw-admin-c0ffee42"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def vault() -> Iterator[VaultStandin]:
    with VaultStandin() as standin:
        standin.add_token(TOKEN)
        standin.put("secret", "network/core-1", {"username": "netops", "password": PASSWORD_V1})
        standin.put("secret", "network/core-1", {"username": "netops", "password": PASSWORD_V2})
        standin.put("secret", "admin/root", {"username": "root", "password": ADMIN_PASSWORD})
        yield standin


def make(url: str, clock: Clock | None = None, **options: Any) -> VaultKvCredentials:
    """A provider built as the registry builds it (from settings), with ``options``."""
    settings = load_settings(credentials={"vault_kv": {"url": url, **options}})
    if clock is None:
        return VaultKvCredentials(settings)
    return VaultKvCredentials(settings, clock=clock)


def ref(path: str, **extra: Any) -> CredentialRef:
    return CredentialRef(name="vault_kv", ref=path, **extra)


def reads(vault: VaultStandin, mount: str = "secret") -> int:
    return vault.count("GET", f"/v1/{mount}/")


# -- reading ----------------------------------------------------------------------------------


def test_the_provider_is_registered_as_vault_kv() -> None:
    assert credentials.registry.get("vault_kv") is VaultKvCredentials


def test_kv2_reads_the_latest_version_and_a_given_one(vault: VaultStandin) -> None:
    provider = make(vault.url, token=TOKEN)
    assert provider.read(ref("network/core-1")) == {"username": "netops", "password": PASSWORD_V2}
    older = provider.read(ref("network/core-1", version=1))
    assert older == {"username": "netops", "password": PASSWORD_V1}
    seen = [r for r in vault.requests if r.path == "/v1/secret/data/network/core-1"]
    assert len(seen) == 2 and {r.token for r in seen} == {TOKEN}


def test_kv2_values_come_back_as_text(vault: VaultStandin) -> None:
    vault.put("secret", "network/odd", {"username": "u", "pin": 1234, "on": True, "x": None})
    assert make(vault.url, token=TOKEN).read(ref("network/odd")) == {
        "username": "u",
        "pin": "1234",
        "on": "True",
    }


def test_kv1_reads_with_the_mount_of_the_options_or_of_the_reference(
    vault: VaultStandin,
) -> None:
    vault.mount("kv", version=1)
    vault.put("kv", "network/edge-1", {"username": "edge", "password": "pw-kv1"})
    by_option = make(vault.url, token=TOKEN, kv_version=1, mount="kv")
    assert by_option.read(ref("network/edge-1")) == {"username": "edge", "password": "pw-kv1"}
    by_ref = make(vault.url, token=TOKEN, kv_version=1, cache_ttl=0)
    assert by_ref.read(ref("network/edge-1", mount="kv"))["username"] == "edge"
    assert vault.count("GET", "/v1/kv/network/edge-1") == 2
    assert vault.count("GET", "/v1/kv/data/") == 0  # v1: no data/ in the path


def test_a_version_with_kv1_is_refused_at_submission(vault: VaultStandin) -> None:
    provider = make(vault.url, token=TOKEN, kv_version=1)
    with pytest.raises(Unprocessable, match=r"credential\.version is for KV version 2"):
        provider.check(ref("network/core-1", version=2))
    assert vault.requests == []


# -- AppRole and namespaces -------------------------------------------------------------------


def test_approle_logs_in_once_and_again_after_its_token_expired(vault: VaultStandin) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID, policies=["secret/data/network/*"], ttl=30)
    provider = make(vault.url, role_id=ROLE_ID, secret_id=SECRET_ID, cache_ttl=0)
    logins = "/v1/auth/approle/login"
    assert provider.read(ref("network/core-1"))["password"] == PASSWORD_V2
    assert provider.read(ref("network/core-1"))["password"] == PASSWORD_V2
    assert vault.count("POST", logins) == 1  # the token is kept between reads
    first_token = vault.requests[-1].token
    assert first_token and first_token != TOKEN

    vault.expire_tokens()
    assert provider.read(ref("network/core-1"))["password"] == PASSWORD_V2
    assert vault.count("POST", logins) == 2
    refused, relogin, retried = vault.requests[-3:]
    assert (refused.token, relogin.path, retried.path) == (first_token, logins, refused.path)
    assert retried.token not in (None, first_token)


def test_approle_with_a_wrong_secret_id_fails_without_quoting_it(vault: VaultStandin) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID)
    provider = make(vault.url, role_id=ROLE_ID, secret_id="wrong-secret-id-77aa")
    with pytest.raises(CredentialError) as caught:
        provider.read(ref("network/core-1"))
    message = str(caught.value)
    assert "Vault refused the AppRole login" in message
    assert "'network/core-1'" in message and "'secret'" in message
    assert "wrong-secret-id-77aa" not in message and ROLE_ID not in message


def test_approle_logs_in_at_the_configured_mount(vault: VaultStandin) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID, mount="robots")
    provider = make(vault.url, role_id=ROLE_ID, secret_id=SECRET_ID, approle_mount="robots")
    assert provider.read(ref("network/core-1"))["username"] == "netops"
    assert vault.count("POST", "/v1/auth/robots/login") == 1


def test_the_namespace_of_the_options_or_of_the_reference_is_sent(vault: VaultStandin) -> None:
    vault.put("secret", "network/core-1", {"username": "team-a-user"}, namespace="team-a")
    vault.put("secret", "network/core-1", {"username": "team-b-user"}, namespace="team-b")
    provider = make(vault.url, token=TOKEN, namespace="team-a")
    assert provider.read(ref("network/core-1")) == {"username": "team-a-user"}
    assert vault.requests[-1].namespace == "team-a"
    assert provider.read(ref("network/core-1", namespace="team-b")) == {"username": "team-b-user"}
    assert vault.requests[-1].namespace == "team-b"
    root = make(vault.url, token=TOKEN)  # no namespace: the root's secret, no header
    assert root.read(ref("network/core-1"))["password"] == PASSWORD_V2
    assert vault.requests[-1].namespace is None


# -- what may be read -------------------------------------------------------------------------


def test_allowed_paths_refuse_a_path_outside_naming_it(vault: VaultStandin) -> None:
    provider = make(vault.url, token=TOKEN, allowed_paths=["secret/network/*"])
    provider.check(ref("network/core-1"))  # inside: passes
    with pytest.raises(CredentialForbidden, match="'secret/admin/root' is outside") as caught:
        provider.check(ref("admin/root"))
    assert caught.value.http_status == 403
    with pytest.raises(CredentialForbidden, match="'other/network/core-1'"):
        provider.check(ref("network/core-1", mount="other"))
    with pytest.raises(CredentialError, match="'secret/admin/root' is outside"):
        provider.read(ref("admin/root"))  # refused again where it would be read
    assert reads(vault) == 0


def test_allowed_paths_from_the_environment_as_json_or_commas(vault: VaultStandin) -> None:
    for given in ('["secret/network/*", "kv/*"]', "secret/network/*, kv/*"):
        provider = make(vault.url, token=TOKEN, allowed_paths=given, kv_version="2")
        provider.check(ref("network/core-1"))
        provider.check(ref("any", mount="kv"))
        with pytest.raises(CredentialForbidden):
            provider.check(ref("admin/root"))


@pytest.mark.parametrize(
    ("field", "extra"),
    [
        ("ref", {"path": "network/../admin/root"}),
        ("ref", {"path": "network//core-1"}),
        ("ref", {"path": "/network/core-1"}),
        ("ref", {"path": "network/core-1/"}),
        ("ref", {"path": "network/core\n1"}),
        ("mount", {"mount": "secret/../other"}),
        ("namespace", {"namespace": "team/./a"}),
    ],
)
def test_a_malformed_reference_is_refused_at_submission(
    vault: VaultStandin, field: str, extra: dict[str, str]
) -> None:
    """Dot segments would pass a pattern such as ``secret/network/*`` and then be read
    elsewhere: they are refused, never matched."""
    provider = make(vault.url, token=TOKEN, allowed_paths=["secret/network/*"])
    path = extra.pop("path", "network/core-1")
    with pytest.raises(Unprocessable, match=f"credential.{field} "):
        provider.check(ref(path, **extra))
    with pytest.raises(CredentialError, match=f"credential.{field} "):
        provider.read(ref(path, **extra))
    assert vault.requests == []


# -- the cache --------------------------------------------------------------------------------


def test_a_secret_is_cached_for_cache_ttl_then_read_again(vault: VaultStandin) -> None:
    clock = Clock()
    provider = make(vault.url, clock, token=TOKEN, cache_ttl=5)
    first = provider.read(ref("network/core-1"))
    first["password"] = "changed by the caller"  # a copy: the cache is not touched
    clock.advance(4.9)
    assert provider.read(ref("network/core-1"))["password"] == PASSWORD_V2
    assert reads(vault) == 1  # a hit within cache_ttl
    provider.read(ref("network/core-1", version=1))
    assert reads(vault) == 2  # the version is part of the key
    clock.advance(0.1)
    assert provider.read(ref("network/core-1"))["password"] == PASSWORD_V2
    assert reads(vault) == 3  # expired: read again


def test_cache_ttl_0_reads_vault_every_time(vault: VaultStandin) -> None:
    provider = make(vault.url, Clock(), token=TOKEN, cache_ttl=0)
    for _ in range(3):
        provider.read(ref("network/core-1"))
    assert reads(vault) == 3


def test_a_failure_is_not_cached(vault: VaultStandin) -> None:
    provider = make(vault.url, Clock(), token=TOKEN, cache_ttl=60)
    with pytest.raises(CredentialError, match="secret not found"):
        provider.read(ref("network/new"))
    vault.put("secret", "network/new", {"username": "new"})
    assert provider.read(ref("network/new")) == {"username": "new"}


# -- failures ---------------------------------------------------------------------------------


def _no_secret_in(message: str, *more: str) -> None:
    for secret in (TOKEN, SECRET_ID, PASSWORD_V1, PASSWORD_V2, ADMIN_PASSWORD, *more):
        assert secret not in message, message


def test_a_missing_secret_or_version_is_secret_not_found(vault: VaultStandin) -> None:
    provider = make(vault.url, token=TOKEN)
    with pytest.raises(CredentialError) as caught:
        provider.read(ref("network/missing"))
    assert str(caught.value) == (
        "vault_kv: secret not found: mount 'secret', path 'network/missing'"
    )
    with pytest.raises(CredentialError, match=r"secret not found: .* version 9"):
        provider.read(ref("network/core-1", version=9))


def test_a_path_the_policy_refuses_is_permission_denied(vault: VaultStandin) -> None:
    vault.add_token("hvs.narrow-token-6e1d", policies=["secret/data/network/*"])
    provider = make(vault.url, token="hvs.narrow-token-6e1d")
    assert provider.read(ref("network/core-1"))["username"] == "netops"
    with pytest.raises(CredentialError) as caught:
        provider.read(ref("admin/root"))
    message = str(caught.value)
    assert message.startswith("vault_kv: permission denied")
    assert "mount 'secret', path 'admin/root'" in message
    _no_secret_in(message, "hvs.narrow-token-6e1d")


def test_an_unknown_token_is_told_apart_from_a_policy_refusal(vault: VaultStandin) -> None:
    provider = make(vault.url, token="hvs.revoked-token-31c9")
    with pytest.raises(CredentialError) as caught:
        provider.read(ref("network/core-1"))
    message = str(caught.value)
    assert "Vault refused the token (invalid or expired" in message
    assert "path 'network/core-1'" in message
    _no_secret_in(message, "hvs.revoked-token-31c9")
    assert vault.count("GET", "/v1/auth/token/lookup-self") == 1


def test_a_sealed_vault_is_sealed_or_unreachable(vault: VaultStandin) -> None:
    provider = make(vault.url, token=TOKEN, namespace="team-a")
    vault.sealed = True
    with pytest.raises(CredentialError) as caught:
        provider.read(ref("network/core-1", version=2))
    assert str(caught.value) == (
        "vault_kv: Vault is sealed or unreachable: namespace 'team-a', mount 'secret', "
        "path 'network/core-1', version 2"
    )
    vault.sealed = False  # unsealed: the same provider reads again
    vault.put("secret", "network/core-1", {"username": "ns"}, namespace="team-a")
    assert provider.read(ref("network/core-1")) == {"username": "ns"}


def test_a_vault_sealed_at_the_approle_login_is_sealed_or_unreachable(
    vault: VaultStandin,
) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID)
    provider = make(vault.url, role_id=ROLE_ID, secret_id=SECRET_ID)
    vault.sealed = True
    with pytest.raises(CredentialError, match="Vault is sealed or unreachable: mount 'secret'"):
        provider.read(ref("network/core-1"))
    assert vault.count("POST", "/v1/auth/approle/login") == 1
    vault.sealed = False
    assert provider.read(ref("network/core-1"))["username"] == "netops"


def test_nobody_listening_is_sealed_or_unreachable() -> None:
    provider = make(f"http://127.0.0.1:{free_port()}", token=TOKEN, timeout=2)
    with pytest.raises(CredentialError) as caught:
        provider.read(ref("network/core-1"))
    message = str(caught.value)
    assert message.startswith("vault_kv: Vault is sealed or unreachable: mount 'secret'")
    _no_secret_in(message)
    assert "127.0.0.1" not in message  # the address is logged, not handed to the job


def test_a_kv1_mount_read_as_kv2_is_not_found(vault: VaultStandin) -> None:
    vault.mount("kv", version=1)
    vault.put("kv", "network/edge-1", {"password": "pw-kv1-secret"})
    with pytest.raises(CredentialError, match="secret not found") as caught:
        make(vault.url, token=TOKEN, mount="kv").read(ref("network/edge-1"))
    _no_secret_in(str(caught.value), "pw-kv1-secret")


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"token": TOKEN}, "url"),
        ({"url": "ftp://127.0.0.1:8200", "token": TOKEN}, "url"),
        ({"url": "http://user:pw-in-url@127.0.0.1:8200", "token": TOKEN}, "url"),
        ({"url": "http://127.0.0.1:8200"}, "token"),
        ({"url": "http://127.0.0.1:8200", "token": TOKEN, "secret_id": SECRET_ID}, "token"),
        ({"url": "http://127.0.0.1:8200", "role_id": ROLE_ID}, "secret_id"),
        ({"url": "http://127.0.0.1:8200", "secret_id": SECRET_ID}, "role_id"),
        ({"url": "http://127.0.0.1:8200", "token": TOKEN, "kv_version": 3}, "kv_version"),
        ({"url": "http://127.0.0.1:8200", "token": TOKEN, "cache_ttl": -1}, "cache_ttl"),
        ({"url": "http://127.0.0.1:8200", "token": TOKEN, "timeout": 0}, "timeout"),
        ({"url": "http://127.0.0.1:8200", "token": TOKEN, "verify": "/no/such/ca.pem"}, "verify"),
        ({"url": "http://127.0.0.1:8200", "token": TOKEN, "allowed_paths": "[x"}, "allowed_paths"),
        ({"url": "http://127.0.0.1:8200", "token": TOKEN, "tokn": TOKEN}, "tokn"),
        ({"url": "http://127.0.0.1:8200", "token": 12345}, "token"),
    ],
)
def test_a_bad_option_is_a_config_error_naming_the_setting(
    options: dict[str, Any], setting: str
) -> None:
    settings = load_settings(credentials={"vault_kv": options})
    with pytest.raises(ConfigError) as caught:
        VaultKvCredentials(settings)
    message = str(caught.value)
    assert f"credentials.vault_kv.{setting} " in message
    assert f"NETPULSE_CREDENTIALS__VAULT_KV__{setting.upper()}" in message
    _no_secret_in(message, "pw-in-url", "12345")


def test_options_from_the_environment_are_read_from_text(
    vault: VaultStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "URL": vault.url,
        "TOKEN": TOKEN,
        "KV_VERSION": "2",
        "CACHE_TTL": "0",
        "TIMEOUT": "2.5",
        "VERIFY": "false",
        "ALLOWED_PATHS": json.dumps(["secret/network/*"]),
    }.items():
        monkeypatch.setenv(f"NETPULSE_CREDENTIALS__VAULT_KV__{name}", value)
    provider = VaultKvCredentials(load_settings())
    config = provider.config
    assert (config.kv_version, config.cache_ttl, config.timeout) == (2, 0, 2.5)
    assert config.verify is False
    assert config.allowed_paths == ["secret/network/*"]
    assert provider.read(ref("network/core-1"))["username"] == "netops"


# -- end to end -------------------------------------------------------------------------------


@pytest.fixture
def vault_stack(
    netpulse_env: dict[str, str], vault: VaultStandin, tmp_path: Path
) -> Iterator[Stack]:
    """A controller and a FIFO pool of their own whose credentials.vault_kv points at the
    stand-in (through the environment, as an operator would set it)."""
    env = {
        **netpulse_env,
        "NETPULSE_CREDENTIALS__VAULT_KV__URL": vault.url,
        "NETPULSE_CREDENTIALS__VAULT_KV__TOKEN": TOKEN,
        "NETPULSE_CREDENTIALS__VAULT_KV__ALLOWED_PATHS": '["secret/network/*"]',
    }
    stack = Stack(env, tmp_path / "stack")
    try:
        stack.start_redis()
        stack.start("controller")
        stack.start("fifo")
        processes.wait_until(lambda: processes.http_ready(stack.url), 60, "the controller")
        conn = stack.redis
        processes.wait_until(lambda: PoolDirectory(conn).live_pools(), 60, "the FIFO pool")
        yield stack
    finally:
        stack.stop()


def test_a_job_logs_in_with_the_login_vault_holds(
    vault_stack: Stack, vault: VaultStandin, lab: dict[str, Any]
) -> None:
    dev = device(lab, "cisco_ios")
    vault.put(
        "secret",
        "network/ios-1",
        {"user": dev.username, "password": dev.password, "secret": dev.secret},
    )
    args = {
        k: v
        for k, v in dev.connection_args().items()
        if k not in ("username", "password", "secret")
    }

    def body(path: str, **extra: Any) -> dict[str, Any]:
        credential = {"name": "vault_kv", "ref": path, "field_mapping": {"username": "user"}}
        return {
            "driver": "netmiko",
            "queue_strategy": "fifo",
            "connection_args": args,
            "credential": {**credential, **extra},
            "command": "show version",
            "enable_mode": True,
        }

    with vault_stack.client() as api:
        job = run(api, body("network/ios-1"))
        assert job["status"] == "finished", job
        [item] = job["result"]["retval"]
        assert item["exit_status"] == 0 and "Cisco" in item["stdout"]
        assert vault.count("GET", "/v1/secret/data/network/ios-1") >= 1
        assert TOKEN not in json.dumps(job)

        missing = run(api, body("network/ios-9"))
        assert missing["status"] == "failed", missing
        error = missing["result"]["error"]
        assert error["type"] == "credential_error"
        assert "secret not found: mount 'secret', path 'network/ios-9'" in error["message"]
        _no_secret_in(json.dumps(missing))

        refused = api.post("/device/exec", json=body("admin/root"))
        assert refused.status_code == 403, refused.text
        assert "'secret/admin/root' is outside" in refused.json()["detail"]
        assert vault.count("GET", "/v1/secret/data/admin/") == 0
