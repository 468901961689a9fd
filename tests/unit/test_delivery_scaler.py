"""When `netpulse up` starts and stops extra delivery processes (pure rule; the backlog is
given)."""

from __future__ import annotations

from typing import Any

import pytest

from netpulse.cli import delivery_scaler
from netpulse.cli.delivery_scaler import DeliveryScaler


@pytest.fixture
def backlog(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    value = [0]
    monkeypatch.setattr(delivery_scaler.store, "due_now_count", lambda conn, now: value[0])
    return value


def test_extra_processes_follow_the_backlog_up_to_the_spare_cores(backlog: list[int]) -> None:
    started: list[str] = []
    stopped: list[Any] = []
    scaler = DeliveryScaler(
        None, start=lambda n: started.append(n) or n, stop=stopped.append, max_extra=1
    )
    backlog[0] = 5000
    scaler.look(now=100.0)
    assert started == []  # behind, but not for long yet
    scaler.look(now=111.0)
    assert started == ["worker-webhooks-2"]
    scaler.look(now=130.0)
    scaler.look(now=150.0)
    assert started == ["worker-webhooks-2"]  # one spare core: one extra at most
    backlog[0] = 10
    scaler.look(now=160.0)
    backlog[0] = 0
    scaler.look(now=170.0)
    scaler.look(now=200.0)
    assert stopped == []  # idle, but not for a minute yet
    scaler.look(now=231.0)
    assert stopped == ["worker-webhooks-2"] and scaler.extra == []


def test_one_core_means_no_extra(backlog: list[int]) -> None:
    started: list[str] = []
    scaler = DeliveryScaler(None, start=started.append, stop=lambda c: None, max_extra=0)
    backlog[0] = 10**6
    for t in range(0, 100, 5):
        scaler.look(now=float(t))
    assert started == []


def test_looks_are_at_most_every_five_seconds(backlog: list[int]) -> None:
    calls = []
    backlog[0] = 5000

    def start(name: str) -> str:
        calls.append(name)
        return name

    scaler = DeliveryScaler(None, start=start, stop=lambda c: None, max_extra=3)
    scaler.look(now=100.0)  # behind since 100
    scaler.look(now=109.0)  # 9 s behind: not yet
    scaler.look(now=110.5)  # too soon after the last look: not looked at
    assert calls == []
    scaler.look(now=114.1)
    assert calls == ["worker-webhooks-2"]
