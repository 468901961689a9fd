"""`greedy`: fill one node before the next (fewest nodes in use)."""

from netpulse.schedulers import BaseScheduler, NodeLoad


class GreedyScheduler(BaseScheduler):
    scheduler_name = "greedy"

    def choose(self, nodes: list[NodeLoad], device: str) -> NodeLoad | None:
        fitting = sorted((n for n in nodes if n.has_room), key=lambda n: (-n.devices, n.name))
        return fitting[0] if fitting else None


__all__ = ["GreedyScheduler"]
