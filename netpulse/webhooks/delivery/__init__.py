"""The delivery process (``netpulse worker webhooks``): claim due events, run their callers,
write each attempt's outcome.

``service`` is the loop, ``origins`` the per-destination gate, ``journal`` the batched
outcome writer, ``retry`` the retry policy, ``heartbeat`` the liveness beat and ``metrics``
the counters; HTTP goes through ``netpulse.net.client``.
"""
