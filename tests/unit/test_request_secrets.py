"""Secret options never leave the job: the request a webhook caller gets has none."""

from __future__ import annotations

import json

import pytest

from netpulse.models.request import ExecutionRequest, is_secret_option
from netpulse.webhooks.outbox.record import request_without_secrets


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "secret",
        "passphrase",
        "pkey",
        "proxy_password",
        "proxy_pkey",
        "proxy_passphrase",
        "sudo_password",
        "enable_password",
        "api_token",
        "key_filename",
        "proxy_key_filename",
    ],
)
def test_secret_names_are_recognised(name: str) -> None:
    assert is_secret_option(name)


@pytest.mark.parametrize("name", ["host", "proxy_host", "sudo", "timeout", "keepalive"])
def test_other_names_are_not(name: str) -> None:
    assert not is_secret_option(name)


def test_the_webhook_request_has_no_secret_of_either_argument_set() -> None:
    req = ExecutionRequest.model_validate(
        {
            "driver": "paramiko",
            "connection_args": {
                "host": "192.0.2.1",
                "username": "ops",
                "password": "pw-1",
                "pkey": "KEY-TEXT",
                "proxy_host": "bastion",
                "proxy_password": "pw-2",
            },
            "command": "id",
            "driver_args": {"sudo": True, "sudo_password": "pw-3"},
        }
    )
    shown = request_without_secrets(req)
    text = json.dumps(shown)
    for secret in ("pw-1", "KEY-TEXT", "pw-2", "pw-3"):
        assert secret not in text
    assert shown["connection_args"]["proxy_host"] == "bastion"
    assert shown["driver_args"] == {"sudo": True}
