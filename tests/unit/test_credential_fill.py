"""How a job's credential fills its login (``netpulse.credentials.fill``) and where a
reference is refused (``check``), with a fake provider registered for the test.

The built-in store keeps only the five login field names, so ``field_mapping`` (reading a
field stored under another name, as Vault secrets are) is tested here with a provider whose
secret has the names the test chooses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

import netpulse.credentials as credentials
from netpulse.config import ConfigError
from netpulse.credentials import BaseCredentialProvider, CredentialError
from netpulse.errors import Forbidden, Unavailable, Unprocessable
from netpulse.models.credential import CredentialRef, CredentialWrite
from netpulse.models.request import ConnectionArgs, ExecutionRequest

FAKE = "fake-for-fill-tests"


class FakeProvider(BaseCredentialProvider):
    """Serves ``SECRETS[ref]``; refuses refs starting ``forbidden/`` (403) and ``bad/``
    (422) at check time; records what it was asked."""

    provider_name = FAKE
    SECRETS: ClassVar[dict[str, dict[str, str]]] = {}
    reads: ClassVar[list[CredentialRef]] = []

    def check(self, ref: CredentialRef) -> None:
        if ref.ref.startswith("forbidden/"):
            raise credentials.CredentialForbidden(f"{ref.ref!r} is outside the allowed paths")
        if ref.ref.startswith("bad/"):
            raise Unprocessable(f"{ref.ref!r} is not a path this provider reads")

    def read(self, ref: CredentialRef) -> dict[str, str]:
        self.reads.append(ref)
        try:
            return dict(self.SECRETS[ref.ref])
        except KeyError:
            raise CredentialError(f"{FAKE}: no secret at {ref.ref!r}") from None


@pytest.fixture
def fake() -> Iterator[type[FakeProvider]]:
    credentials.registry.register(FakeProvider)
    FakeProvider.SECRETS.clear()
    FakeProvider.reads.clear()
    try:
        yield FakeProvider
    finally:
        credentials.registry.plugins.pop(FAKE, None)
        credentials._instances.pop(FAKE, None)


def ref(name: str, **extra: Any) -> CredentialRef:
    return CredentialRef(name=FAKE, ref=name, **extra)


def test_the_credential_fills_the_empty_login_fields(fake: type[FakeProvider]) -> None:
    fake.SECRETS["a"] = {
        "username": "u",
        "password": "p",
        "secret": "s",
        "pkey": "KEY",
        "passphrase": "pp",
        "token": "not a login field",
    }
    args = ConnectionArgs(host="10.0.0.1", device_type="cisco_ios", port=22)
    filled = credentials.fill(args, ref("a"))
    assert (filled.username, filled.password, filled.secret) == ("u", "p", "s")
    assert filled.model_extra == {"pkey": "KEY", "passphrase": "pp"}
    dumped = filled.model_dump(exclude_none=True)
    assert "token" not in dumped  # only the five login fields are ever filled
    assert (dumped["host"], dumped["device_type"], dumped["port"]) == ("10.0.0.1", "cisco_ios", 22)
    assert args.username is None and args.model_extra == {}  # the request itself is unchanged


def test_a_value_the_request_gives_wins_and_an_empty_one_is_filled(
    fake: type[FakeProvider],
) -> None:
    fake.SECRETS["a"] = {"username": "stored-user", "password": "stored-pw", "secret": "stored-s"}
    args = ConnectionArgs(host="h", username="own-user", password="", secret=None)
    filled = credentials.fill(args, ref("a"))
    assert filled.username == "own-user"
    assert filled.password == "stored-pw"  # "" counts as not given
    assert filled.secret == "stored-s"


def test_a_login_without_a_username_from_either_side_is_a_credential_error(
    fake: type[FakeProvider],
) -> None:
    fake.SECRETS["nouser"] = {"password": "pw-only"}
    with pytest.raises(CredentialError, match=r"'nouser'.*has no username"):
        credentials.fill(ConnectionArgs(host="h"), ref("nouser"))
    given = credentials.fill(ConnectionArgs(host="h", username="ops"), ref("nouser"))
    assert (given.username, given.password) == ("ops", "pw-only")


def test_field_mapping_reads_a_field_stored_under_another_name(fake: type[FakeProvider]) -> None:
    fake.SECRETS["vaultish"] = {
        "user": "mapped-user",
        "pass": "mapped-pw",
        "password": "the-unmapped-one",
        "enable": "mapped-secret",
    }
    mapping = {"username": "user", "password": "pass", "secret": "enable"}
    filled = credentials.fill(ConnectionArgs(host="h"), ref("vaultish", field_mapping=mapping))
    assert (filled.username, filled.password, filled.secret) == (
        "mapped-user",
        "mapped-pw",
        "mapped-secret",
    )
    # An unmapped field keeps its own name; a mapped name the secret lacks fills nothing.
    partial = credentials.fill(
        ConnectionArgs(host="h", username="given"),
        ref("vaultish", field_mapping={"secret": "no-such-field"}),
    )
    assert partial.password == "the-unmapped-one"
    assert partial.secret is None
    assert fake.reads[0].field_mapping == mapping


def test_field_mapping_names_only_login_fields() -> None:
    with pytest.raises(ValidationError, match="field_mapping"):
        CredentialRef.model_validate({"ref": "x", "field_mapping": {"host": "addr"}})


def test_a_secret_that_cannot_be_read_is_a_credential_error(fake: type[FakeProvider]) -> None:
    with pytest.raises(CredentialError, match="no secret at 'missing'"):
        credentials.fill(ConnectionArgs(host="h"), ref("missing"))


def test_check_refuses_an_unknown_provider_naming_the_valid_ones(
    fake: type[FakeProvider],
) -> None:
    with pytest.raises(Unprocessable, match=rf"unknown credential provider 'nope'.*{FAKE}"):
        credentials.check(CredentialRef(name="nope", ref="x"))
    with pytest.raises(Unprocessable, match="local"):
        credentials.check(CredentialRef(name="nope", ref="x"))


def test_check_passes_the_providers_own_refusals_through(fake: type[FakeProvider]) -> None:
    credentials.check(ref("fine"))  # the check reads nothing
    assert fake.reads == []
    with pytest.raises(Forbidden, match="allowed paths"):
        credentials.check(ref("forbidden/x"))
    with pytest.raises(Unprocessable, match="not a path"):
        credentials.check(ref("bad/x"))


def test_an_unknown_provider_at_run_time_is_a_credential_error() -> None:
    with pytest.raises(CredentialError, match="no-such-provider"):
        credentials.fill(ConnectionArgs(host="h"), CredentialRef(name="no-such-provider", ref="x"))


def test_local_refuses_a_ref_that_is_no_stored_credentials_name_before_reading() -> None:
    # The name check comes before any Redis lookup (no Redis is needed to refuse it).
    with pytest.raises(Unprocessable, match="not a stored credential's name"):
        credentials.check(CredentialRef(name="local", ref="secret/data/../x"))


def test_a_request_names_the_local_provider_by_default() -> None:
    req = ExecutionRequest.model_validate(
        {
            "driver": "netmiko",
            "connection_args": {"host": "h", "device_type": "cisco_ios"},
            "command": "show version",
            "credential": {"ref": "lab"},
        }
    )
    assert req.credential == CredentialRef(name="local", ref="lab")


def test_a_credential_write_never_shows_its_values() -> None:
    body = CredentialWrite.model_validate(
        {"username": "u", "password": "pw-123", "secret": "s-456"}
    )
    assert "pw-123" not in repr(body) and "s-456" not in str(body)
    assert body.given() == {"username": "u", "password": "pw-123", "secret": "s-456"}
    with pytest.raises(ValidationError) as caught:
        CredentialWrite.model_validate({"password": "pw-789", "token": "tok-000"})
    assert "tok-000" not in str(caught.value) and "pw-789" not in str(caught.value)


def test_with_the_driver_a_field_it_does_not_take_is_left_out(fake: type[FakeProvider]) -> None:
    fake.SECRETS["mixed"] = {"username": "u", "password": "p", "pkey": "KEY", "passphrase": "pp"}
    args = ConnectionArgs(host="h", device_type="cisco_ios")
    netmiko = credentials.fill(args, ref("mixed"), "netmiko")  # netmiko takes no key text
    assert (netmiko.username, netmiko.password) == ("u", "p")
    assert netmiko.model_extra == {"passphrase": "pp"}
    paramiko = credentials.fill(args, ref("mixed"), "paramiko")
    assert paramiko.model_extra == {"pkey": "KEY", "passphrase": "pp"}
    pyeapi = credentials.fill(args, ref("mixed"), "pyeapi")
    assert pyeapi.model_extra == {} and pyeapi.password == "p"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"mount": "secret"}, "credential.mount"),
        ({"version": 2}, "credential.version"),
        ({"namespace": "team-a", "version": 0}, "credential.version, credential.namespace"),
    ],
)
def test_local_refuses_what_only_other_stores_have(extra: dict[str, Any], named: str) -> None:
    # Refused before any Redis lookup: these mean nothing to the built-in store.
    with pytest.raises(Unprocessable, match=f"{named} do not apply to the local provider"):
        credentials.check(CredentialRef(name="local", ref="lab", **extra))


def test_local_says_when_the_store_cannot_be_read() -> None:
    from redis import Redis

    from netpulse.config import get_settings
    from netpulse.plugins.credentials.local import LocalCredentials
    from netpulse.runtime.ports import free_port

    provider = LocalCredentials(get_settings())
    provider._conn = Redis(port=free_port(), socket_connect_timeout=1)
    with pytest.raises(CredentialError, match=r"'lab'.*\(Redis\) cannot be read"):
        provider.read(CredentialRef(ref="lab"))


class MisconfiguredProvider(BaseCredentialProvider):
    provider_name = "misconfigured-for-tests"

    def __init__(self, settings: Any) -> None:
        raise ConfigError("credentials.misconfigured-for-tests.url is required")


def test_a_provider_that_is_not_set_up_is_503_at_submission_and_a_credential_error_in_a_job() -> (
    None
):
    credentials.registry.register(MisconfiguredProvider)
    try:
        reference = CredentialRef(name=MisconfiguredProvider.provider_name, ref="x")
        with pytest.raises(Unavailable, match=r"not set up on this server.*url is required"):
            credentials.check(reference)
        with pytest.raises(CredentialError, match="not set up on this server"):
            credentials.fill(ConnectionArgs(host="h", username="u"), reference)
    finally:
        credentials.registry.plugins.pop(MisconfiguredProvider.provider_name, None)
