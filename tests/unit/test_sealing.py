"""Sealing secrets for Redis: round trips, key rotation, and exactly which fields."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from netpulse.models.request import ExecutionRequest
from netpulse.security import sealing
from netpulse.security.sealing import PREFIX, Sealer, SealError, new_key


def test_a_sealed_value_opens_and_does_not_show_the_secret() -> None:
    box = Sealer([new_key().encode()])
    sealed = box.seal("hunter2")
    assert sealed.startswith(PREFIX) and "hunter2" not in sealed
    assert box.open(sealed) == "hunter2"
    assert box.seal(sealed) == sealed  # sealing twice changes nothing
    assert box.open("plain") == "plain"  # queued by an older version: opens as itself


def test_rotation_new_key_first_old_ones_still_open() -> None:
    old, new = new_key().encode(), new_key().encode()
    before = Sealer([old]).seal("s")
    rotated = Sealer([new, old])
    assert rotated.open(before) == "s"
    assert Sealer([new]).open(rotated.seal("t")) == "t"  # the first key seals
    with pytest.raises(SealError, match=r"security\.encryption_keys"):
        Sealer([new]).open(before)


def test_an_altered_token_is_refused() -> None:
    box = Sealer([new_key().encode()])
    sealed = box.seal("s")
    with pytest.raises(SealError):
        box.open(sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))


def test_the_key_file_is_made_once_private_and_kept(tmp_path: Path) -> None:
    key = sealing.file_key(tmp_path)
    path = tmp_path / sealing.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert sealing.file_key(tmp_path) == key
    Sealer([key])  # a valid Fernet key


@pytest.fixture
def box(monkeypatch: pytest.MonkeyPatch) -> Sealer:
    box = Sealer([new_key().encode()])
    monkeypatch.setattr(sealing, "sealer", lambda: box)
    return box


def request() -> ExecutionRequest:
    return ExecutionRequest.model_validate(
        {
            "driver": "napalm",
            "connection_args": {
                "host": "192.0.2.1",
                "username": "ops",
                "password": "dev-pw",
                "secret": "enable-pw",
                "optional_args": {"enable_password": "nested-pw", "transport": "https"},
                "key_filename": "keys/id",
            },
            "config": ["hostname x"],
            "driver_args": {"sudo_password": "sudo-pw", "message": "m"},
            "webhook": {
                "url": "https://hooks.example/x",
                "headers": {"X-Token": "hdr-value-1"},
                "cookies": {"s": "ck-value-1"},
                "auth": ["user", "basic-pw"],
            },
        }
    )


def test_a_sealed_request_pickles_without_any_secret(box: Sealer) -> None:
    sealed = sealing.seal_request(request())
    data = pickle.dumps(sealed)
    for secret in (
        b"dev-pw",
        b"enable-pw",
        b"nested-pw",
        b"sudo-pw",
        b"hdr-value-1",
        b"ck-value-1",
        b"basic-pw",
    ):
        assert secret not in data
    # What is not secret stays readable (routing, logs, the session identity's inputs).
    assert sealed.connection_args.host == "192.0.2.1" and sealed.connection_args.username == "ops"
    assert sealed.connection_args.model_extra["key_filename"] == "keys/id"
    assert sealed.driver_args["message"] == "m" and sealed.webhook is not None
    assert sealed.webhook.auth is not None and sealed.webhook.auth[0] == "user"


def test_opening_gives_back_the_request_as_submitted(box: Sealer) -> None:
    original = request()
    opened = sealing.open_request(sealing.seal_request(original))
    assert opened.model_dump(mode="json") == original.model_dump(mode="json")
    assert opened.webhook is not None and opened.webhook.auth is not None
    assert opened.webhook.auth[1].get_secret_value() == "basic-pw"


def test_a_stored_webhook_dict_opens_before_validation(box: Sealer) -> None:
    sealed = sealing.seal_request(request()).webhook
    assert sealed is not None
    stored = sealed.model_dump(mode="json")
    stored["auth"] = [sealed.auth[0], sealed.auth[1].get_secret_value()] if sealed.auth else None
    opened = sealing.open_webhook_dict(stored)
    assert opened["headers"] == {"X-Token": "hdr-value-1"} and opened["cookies"] == {
        "s": "ck-value-1"
    }
    assert opened["auth"] == ["user", "basic-pw"]
