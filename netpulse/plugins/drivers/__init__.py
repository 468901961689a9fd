"""Device driver plugins: one folder per library (`netmiko/`, `paramiko/`, ...)."""

from netpulse.plugins import PluginRegistry
from netpulse.plugins.drivers.base import BaseDriver

registry: PluginRegistry[BaseDriver] = PluginRegistry("drivers", BaseDriver, "driver_name")

__all__ = ["BaseDriver", "registry"]
