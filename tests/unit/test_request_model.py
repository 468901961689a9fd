"""The request models: shape on their own, plugins only when the registries are given."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from netpulse.dispatch.intake import checked
from netpulse.models.request import STORED, BulkExecutionRequest, ExecutionRequest
from netpulse.models.request import TestRequest as ConnectionTest


def job(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "driver": "netmiko",
        "connection_args": {"host": "h", "device_type": "cisco_ios"},
        "command": "show version",
    }
    body.update(changes)
    return body


def refusal(model: Any, body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        checked(model, body)
    return str(caught.value)


def test_an_unknown_driver_is_refused_naming_the_installed_ones() -> None:
    text = refusal(ExecutionRequest, job(driver="telnetlib"))
    assert "unknown driver 'telnetlib'" in text
    assert "napalm, netmiko, paramiko, pyeapi" in text
    test = {"driver": "x", "connection_args": {"host": "h"}}
    assert "unknown driver" in refusal(ConnectionTest, test)


def test_an_option_the_driver_does_not_allow_is_refused_naming_both() -> None:
    text = refusal(ExecutionRequest, job(connection_args={"host": "h", "colour": "red"}))
    assert "colour" in text and "netmiko" in text
    assert "bogus" in refusal(ExecutionRequest, job(driver_args={"bogus": 1}))


def test_an_unknown_webhook_caller_is_refused() -> None:
    text = refusal(ExecutionRequest, job(webhook={"name": "nope", "url": "http://a/"}))
    assert "unknown webhook caller 'nope'" in text and "basic" in text


def test_bulk_shared_options_are_checked_against_the_driver() -> None:
    body = {**job(), "connection_args": {"colour": "red"}, "devices": [{"host": "a"}]}
    assert "colour" in refusal(BulkExecutionRequest, body)


def test_without_the_registries_only_the_shape_is_checked() -> None:
    odd = job(driver="telnetlib", connection_args={"host": "h", "colour": "red"})
    for context in (None, STORED):
        req = ExecutionRequest.model_validate(odd, context=context)
        assert req.driver == "telnetlib"
    with pytest.raises(ValidationError, match="host"):
        ExecutionRequest.model_validate(job(connection_args={}), context=STORED)


def test_reading_a_stored_request_loads_no_driver() -> None:
    """In a fork holding no NetPulse module: validating a stored request (as the delivery
    process does) imports neither a driver plugin nor a driver library."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        for name in [m for m in sys.modules if m.startswith(("netpulse", "netmiko", "napalm"))]:
            del sys.modules[name]
        from netpulse.models.request import STORED as stored
        from netpulse.models.request import ExecutionRequest as model

        model.model_validate(job(webhook={"url": "http://a/"}), context=stored)
        loaded = [
            m
            for m in sys.modules
            if m.startswith(("netpulse.plugins", "netpulse.drivers", "netmiko", "napalm"))
        ]
        os.write(write, ",".join(sorted(loaded)).encode())
        os.close(write)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        loaded = pipe.read().decode()
    os.waitpid(pid, 0)
    assert loaded == ""
