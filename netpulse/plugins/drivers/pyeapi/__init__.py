"""pyeapi: Arista eAPI (JSON-RPC over HTTP/HTTPS), commands with structured output."""

from netpulse.plugins.drivers.pyeapi.driver import PyeapiDriver

__all__ = ["PyeapiDriver"]
