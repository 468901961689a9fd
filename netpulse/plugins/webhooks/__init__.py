"""Webhook caller plugins: one folder per caller (`basic/`, ...), registered via `__all__`.

The contract they implement is ``netpulse.webhooks.callers``; third-party packages add callers
through the entry-point group ``netpulse.webhooks``.
"""
