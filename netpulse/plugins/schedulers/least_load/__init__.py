"""`least_load`: the node with the lowest share of its capacity in use (spreads devices)."""

from netpulse.schedulers import BaseScheduler, NodeLoad


class LeastLoadScheduler(BaseScheduler):
    scheduler_name = "least_load"

    def choose(self, nodes: list[NodeLoad], device: str) -> NodeLoad | None:
        fitting = [n for n in nodes if n.has_room]
        return min(fitting, key=lambda n: (n.load, n.name), default=None)


__all__ = ["LeastLoadScheduler"]
