"""The contract of a scheduler plugin: choose the worker node for a new pinned device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netpulse.registry import PluginRegistry


@dataclass(frozen=True)
class NodeLoad:
    """A live node as schedulers see it."""

    name: str
    capacity: int
    devices: int

    @property
    def load(self) -> float:
        return self.devices / self.capacity if self.capacity else 1.0

    @property
    def has_room(self) -> bool:
        return self.devices < self.capacity


class BaseScheduler:
    """Subclasses set ``scheduler_name`` and implement :meth:`choose`."""

    scheduler_name: ClassVar[str] = ""

    def choose(self, nodes: list[NodeLoad], device: str) -> NodeLoad | None:
        """The node for ``device`` among live, non-draining ``nodes``; None if none fits."""
        raise NotImplementedError


registry: PluginRegistry[BaseScheduler] = PluginRegistry(
    "schedulers", BaseScheduler, "scheduler_name"
)
