"""Scheduler plugins (`least_load` default, `greedy`): which node holds a new pinned device."""

from netpulse.plugins import PluginRegistry
from netpulse.plugins.schedulers.base import BaseScheduler, NodeLoad

registry: PluginRegistry[BaseScheduler] = PluginRegistry(
    "schedulers", BaseScheduler, "scheduler_name"
)

__all__ = ["BaseScheduler", "NodeLoad", "registry"]
