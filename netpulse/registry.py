"""Plugin discovery shared by every plugin kind (drivers, webhooks, templates, schedulers).

A plugin is a package ``netpulse/plugins/<kind>/<name>/`` whose ``__init__.py`` lists its
class in ``__all__``; third-party packages add more through the entry-point group
``netpulse.<kind>`` (each entry point names a class). Plugins are found by the name their class
declares (``driver_name``, ``webhook_name``), not by the folder name.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from importlib.metadata import entry_points
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class PluginError(LookupError):
    """A plugin name is unknown; the message lists the ones that exist."""


class PluginRegistry(Generic[T]):
    """Finds plugin classes of one kind, once, and looks them up by name."""

    def __init__(self, kind: str, base: type[T], name_attr: str) -> None:
        self.kind = kind
        self.base = base
        self.name_attr = name_attr
        self._plugins: dict[str, type[T]] | None = None
        self._lock = threading.Lock()

    def _discover(self) -> dict[str, type[T]]:
        found: dict[str, type[T]] = {}
        package = importlib.import_module(f"netpulse.plugins.{self.kind}")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.ispkg:
                continue
            try:
                module = importlib.import_module(f"{package.__name__}.{info.name}")
            except ImportError as exc:
                # A plugin whose library is not installed is unavailable, not fatal.
                log.warning("%s plugin %r not loaded: %s", self.kind, info.name, exc)
                continue
            for attr in getattr(module, "__all__", ()):
                self._add(found, getattr(module, attr, None), module.__name__)
        for ep in entry_points(group=f"netpulse.{self.kind}"):
            try:
                self._add(found, ep.load(), f"entry point {ep.name}")
            except Exception:
                log.exception("cannot load %s plugin from entry point %s", self.kind, ep.value)
        return found

    def _add(self, found: dict[str, type[T]], obj: object, origin: str) -> None:
        if isinstance(obj, type) and issubclass(obj, self.base) and obj is not self.base:
            name = getattr(obj, self.name_attr, None)
            if not name:
                log.warning(
                    "%s plugin %s from %s has no %s", self.kind, obj, origin, self.name_attr
                )
                return
            if name in found and found[name] is not obj:
                log.warning(
                    "%s plugin %r from %s replaces %s", self.kind, name, origin, found[name]
                )
            found[name] = obj

    @property
    def plugins(self) -> dict[str, type[T]]:
        if self._plugins is None:
            with self._lock:
                if self._plugins is None:
                    self._plugins = self._discover()
        return self._plugins

    def names(self) -> list[str]:
        return sorted(self.plugins)

    def get(self, name: str) -> type[T]:
        try:
            return self.plugins[name]
        except KeyError:
            raise PluginError(
                f"unknown {self.kind} plugin {name!r}; valid: {', '.join(self.names())}"
            ) from None

    def register(self, cls: type[T]) -> None:
        """Add a class at run time (tests, embedding applications)."""
        self._add(self.plugins, cls, "register()")

    def reload(self) -> None:
        with self._lock:
            self._plugins = None
