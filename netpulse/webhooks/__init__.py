"""Webhook delivery: events recorded by job callbacks, delivered by a separate service.

Path of an event: ``netpulse.worker.callbacks`` (RQ callback) -> ``events`` (payload) ->
``outbox`` (durable record in Redis) -> ``service`` (delivery loop) -> caller plugin
(``netpulse.plugins.webhooks``) -> HTTP. ``retry``, ``signing`` and ``ssrf`` are the policy
pieces; ``deliveries`` reads the delivery log back for the API.
"""
