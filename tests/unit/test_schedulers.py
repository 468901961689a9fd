"""Scheduler plugins choose a node for a new pinned device."""

from __future__ import annotations

from netpulse.schedulers import NodeLoad, registry


def test_registry_finds_the_built_in_schedulers() -> None:
    assert {"least_load", "greedy"} <= set(registry.names())


def test_least_load_spreads_by_share_of_capacity() -> None:
    nodes = [NodeLoad("a", 100, 50), NodeLoad("b", 10, 2), NodeLoad("c", 100, 30)]
    assert registry.get("least_load")().choose(nodes, "d").name == "b"


def test_full_nodes_are_skipped_and_none_when_all_full() -> None:
    nodes = [NodeLoad("a", 2, 2), NodeLoad("b", 5, 4)]
    assert registry.get("least_load")().choose(nodes, "d").name == "b"
    assert registry.get("least_load")().choose([NodeLoad("a", 1, 1)], "d") is None


def test_greedy_fills_the_busiest_node_that_has_room() -> None:
    nodes = [NodeLoad("a", 10, 3), NodeLoad("b", 10, 9), NodeLoad("c", 10, 10)]
    assert registry.get("greedy")().choose(nodes, "d").name == "b"
