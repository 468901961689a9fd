"""docs/plugins.md's example driver runs as written, against ``netpulse.plugin_api`` only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import netpulse.plugin_api as plugin_api
from netpulse.models.request import ConnectionArgs, ExecutionRequest

PLUGINS_DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def python_block(starting_with: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", PLUGINS_DOC.read_text(), flags=re.S)
    found = [b for b in blocks if b.startswith(starting_with)]
    assert len(found) == 1, f"one example starting with {starting_with!r} in plugins.md"
    return found[0]


@pytest.fixture(scope="module")
def echo() -> Any:
    code = python_block('"""`echo`')
    imports = re.findall(r"^from (\S+) import", code, flags=re.M)
    assert set(imports) <= {"__future__", "netpulse.plugin_api", "time"}, imports
    namespace: dict[str, Any] = {"__name__": "echo_example"}
    exec(compile(code, str(PLUGINS_DOC), "exec"), namespace)
    return namespace["EchoDriver"]


def test_the_example_driver_is_a_driver(echo: Any) -> None:
    assert issubclass(echo, plugin_api.BaseDriver)
    assert echo.device_key(ConnectionArgs(host="10.0.0.1")) == "10.0.0.1:7"


def test_the_example_driver_runs_a_command(echo: Any) -> None:
    req = ExecutionRequest.model_validate(
        {"driver": "echo", "connection_args": {"host": "h", "username": "u"}, "command": "hi"}
    )
    driver = echo(req.connection_args, req.driver_args)
    driver.connect()
    try:
        [result] = driver.execute(req)
    finally:
        driver.disconnect()
    assert (result.command, result.stdout, result.exit_status) == ("hi", "hi", 0)


def test_the_example_driver_checks_its_connection(echo: Any) -> None:
    with pytest.raises(ValueError, match="username is required"):
        echo.validate_connection(ConnectionArgs(host="h"))


def test_the_facade_exports_what_it_lists() -> None:
    assert all(hasattr(plugin_api, name) for name in plugin_api.__all__)


WEBHOOKS_DOC = PLUGINS_DOC.parent / "webhooks.md"
ALLOWED_IMPORTS = {"__future__", "netpulse.plugin_api", "json", "time", "typing"}


def caller_example(first_line: str) -> Any:
    blocks = re.findall(r"```python\n(.*?)```", WEBHOOKS_DOC.read_text(), flags=re.S)
    [code] = [b for b in blocks if b.startswith(first_line)]
    imports = set(re.findall(r"^from (\S+) import|^import (\S+)", code, flags=re.M))
    assert {a or b for a, b in imports} <= ALLOWED_IMPORTS, imports
    namespace: dict[str, Any] = {"__name__": "caller_example"}
    exec(compile(code, str(WEBHOOKS_DOC), "exec"), namespace)
    return namespace


@pytest.mark.parametrize(
    ("first_line", "name", "webhook_name"),
    [
        ("# netpulse/plugins/webhooks/chat/__init__.py", "ChatWebHookCaller", "chat"),
        ("# netpulse_pager.py", "PagerCaller", "pager"),
    ],
)
def test_the_example_callers_use_only_the_public_contract(
    first_line: str, name: str, webhook_name: str
) -> None:
    cls = caller_example(first_line)[name]
    assert issubclass(cls, plugin_api.BaseWebHookCaller)
    assert cls.webhook_name == webhook_name
