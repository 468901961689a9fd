"""Plugin discovery: folders listed in ``__all__``, entry points, names, and what is logged
when a plugin is unusable (never fatal)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import netpulse.registry as registry_module
from netpulse.drivers import registry as drivers
from netpulse.registry import PluginError, PluginRegistry
from netpulse.schedulers import BaseScheduler
from netpulse.schedulers import registry as schedulers
from netpulse.webhooks.callers import registry as callers


class FakeEntryPoint:
    def __init__(self, name: str, loaded: Any = None, error: Exception | None = None) -> None:
        self.name = name
        self.value = f"somewhere:{name}"
        self._loaded = loaded
        self._error = error

    def load(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._loaded


def fresh(monkeypatch: pytest.MonkeyPatch, points: list[FakeEntryPoint]) -> PluginRegistry[Any]:
    """The scheduler kind, rediscovered with ``points`` as its entry points."""
    monkeypatch.setattr(
        registry_module,
        "entry_points",
        lambda group: points if group.endswith("schedulers") else [],
    )
    return PluginRegistry("schedulers", BaseScheduler, "scheduler_name")


def test_the_built_in_plugins_are_found_in_their_folders() -> None:
    assert set(drivers.names()) >= {"netmiko", "paramiko", "napalm", "pyeapi"}
    assert set(schedulers.names()) >= {"least_load", "greedy"}
    assert "basic" in callers.names()


def test_an_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(PluginError) as unknown:
        drivers.get("telnet")
    assert "telnet" in str(unknown.value)
    assert all(name in str(unknown.value) for name in ("netmiko", "paramiko"))


def test_an_entry_point_adds_a_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    class RoundRobin(BaseScheduler):
        scheduler_name = "round_robin"

    found = fresh(monkeypatch, [FakeEntryPoint("round_robin", RoundRobin)])
    assert found.get("round_robin") is RoundRobin
    assert "least_load" in found.names()  # the folders are still read


def test_an_entry_point_replacing_a_built_in_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class MyLeastLoad(BaseScheduler):
        scheduler_name = "least_load"

    caplog.set_level(logging.WARNING, logger="netpulse.registry")
    found = fresh(monkeypatch, [FakeEntryPoint("least_load", MyLeastLoad)])
    assert found.get("least_load") is MyLeastLoad
    assert "replaces" in caplog.text


def test_unusable_plugins_are_logged_and_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Nameless(BaseScheduler):
        pass

    caplog.set_level(logging.WARNING, logger="netpulse.registry")
    found = fresh(
        monkeypatch,
        [
            FakeEntryPoint("nameless", Nameless),
            FakeEntryPoint("broken", error=ImportError("no module named pagerlib")),
            FakeEntryPoint("not_a_class", "just a string"),
        ],
    )
    assert set(found.names()) == set(schedulers.names())
    assert "has no scheduler_name" in caplog.text
    assert "cannot load schedulers plugin from entry point somewhere:broken" in caplog.text


def test_register_adds_a_class_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    class Pinned(BaseScheduler):
        scheduler_name = "pinned_to_first"

    found = fresh(monkeypatch, [])
    found.register(Pinned)
    assert found.get("pinned_to_first") is Pinned
    found.reload()
    assert "pinned_to_first" not in found.names()  # discovery again: folders and entry points
