"""Webhook endpoints: standing subscriptions set by an operator, next to request webhooks.

``directory`` (the endpoints a process matches events against, re-read when they change),
``catalogue`` (create, read, change, delete for the API), ``health`` (failing, disabled, held
events, recovery and rate limits, all in Redis scripts).
"""
