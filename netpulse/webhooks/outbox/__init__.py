"""The writing side of webhooks, run inside device workers: record a job's final event.

One Redis script per event and no HTTP (the specification forbids blocking device work);
the delivery process (``webhooks.delivery``) sends it.
"""
