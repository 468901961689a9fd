"""napalm: vendor-neutral getters and merge/diff/commit config over each vendor's own API."""

from netpulse.plugins.drivers.napalm.driver import NapalmDriver

__all__ = ["NapalmDriver"]
