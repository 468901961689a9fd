"""`load_weighted_random`: a random node, weighted by its free capacity (the original
NetPulse's default scheduler): a node with twice the free slots is chosen twice as often,
and a full node never."""

from __future__ import annotations

import random

from netpulse.schedulers import BaseScheduler, NodeLoad


class LoadWeightedRandomScheduler(BaseScheduler):
    scheduler_name = "load_weighted_random"

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def choose(self, nodes: list[NodeLoad], device: str) -> NodeLoad | None:
        fitting = sorted((n for n in nodes if n.has_room), key=lambda n: n.name)
        if not fitting:
            return None
        weights = [n.capacity - n.devices for n in fitting]
        return self.rng.choices(fitting, weights=weights, k=1)[0]


__all__ = ["LoadWeightedRandomScheduler"]
