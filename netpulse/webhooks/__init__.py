"""Webhooks: events recorded by job callbacks, delivered by a separate process.

Path of an event: ``netpulse.worker.callbacks`` (RQ callback) -> ``outbox`` (payload from
``events``, durable record in Redis, written inside the device worker) -> ``delivery``
(the delivery process: claim, run the caller plugin, journal the outcome) -> caller
(``netpulse.plugins.webhooks``, contract in ``callers``) -> HTTP (``netpulse.net.client``,
which applies the SSRF guard to every connection). ``store`` owns the Redis records and
scripts both sides share, ``signing`` the Standard Webhooks signature; ``deliveries`` reads
the delivery log back for the API.
"""
