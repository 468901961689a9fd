"""Scheduler plugins choose a node for a new pinned device."""

from __future__ import annotations

import random
from collections import Counter

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


def test_the_original_netpulse_schedulers_are_there() -> None:
    assert {"least_load_random", "load_weighted_random"} <= set(registry.names())


def test_least_load_random_picks_among_the_least_loaded_only() -> None:
    nodes = [NodeLoad("a", 10, 2), NodeLoad("b", 20, 4), NodeLoad("c", 10, 5), NodeLoad("d", 1, 1)]
    scheduler = registry.get("least_load_random")(rng=random.Random(7))
    picked = {scheduler.choose(nodes, f"dev{i}").name for i in range(200)}
    assert picked == {"a", "b"}  # both at 20 %; c is at 50 %, d is full
    assert scheduler.choose([NodeLoad("a", 1, 1)], "x") is None


def test_load_weighted_random_follows_free_capacity() -> None:
    nodes = [NodeLoad("a", 10, 9), NodeLoad("b", 10, 7), NodeLoad("c", 10, 10)]
    scheduler = registry.get("load_weighted_random")(rng=random.Random(3))
    picks = Counter(scheduler.choose(nodes, f"dev{i}").name for i in range(4000))
    assert set(picks) == {"a", "b"}  # c is full
    assert 2.5 < picks["b"] / picks["a"] < 3.5  # 3 free slots against 1
    assert scheduler.choose([NodeLoad("a", 2, 2)], "x") is None
