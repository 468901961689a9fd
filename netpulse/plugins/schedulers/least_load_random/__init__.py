"""`least_load_random`: a random node among the least loaded ones (the original NetPulse's
scheduler of that name): spreads devices like `least_load`, without always picking the
same node of equally loaded ones first."""

from __future__ import annotations

import random

from netpulse.schedulers import BaseScheduler, NodeLoad


class LeastLoadRandomScheduler(BaseScheduler):
    scheduler_name = "least_load_random"

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def choose(self, nodes: list[NodeLoad], device: str) -> NodeLoad | None:
        fitting = [n for n in nodes if n.has_room]
        if not fitting:
            return None
        lowest = min(n.load for n in fitting)
        return self.rng.choice(sorted((n for n in fitting if n.load == lowest), key=_name))


def _name(node: NodeLoad) -> str:
    return node.name


__all__ = ["LeastLoadRandomScheduler"]
