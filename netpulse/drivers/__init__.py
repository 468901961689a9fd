"""The device driver contract: what a driver plugin implements, and the registry finding them.

Drivers live in ``netpulse/plugins/drivers/<name>/``; everything they build on is here:
``base`` (the class and its errors), ``options`` (the allowlists of connection and driver
options) and ``transfer`` (every file_transfer option, on three primitives a driver lends).
"""

from netpulse.drivers.base import (
    BaseDriver,
    DeviceAuthenticationError,
    DeviceConnectionError,
    DeviceTimeoutError,
    DriverError,
)
from netpulse.registry import PluginRegistry

# mypy refuses an abstract class where ``type[T]`` is expected (python/mypy#4717); the
# registry only uses it for ``issubclass``, never instantiates it.
registry: PluginRegistry[BaseDriver] = PluginRegistry(
    "drivers",
    BaseDriver,  # type: ignore[type-abstract]
    "driver_name",
)

__all__ = [
    "BaseDriver",
    "DeviceAuthenticationError",
    "DeviceConnectionError",
    "DeviceTimeoutError",
    "DriverError",
    "registry",
]
