"""The dashboard at ``/ui``: server-rendered pages (Jinja2) made live with htmx.

It is a face of the API, not a second API: every page reads through the functions the
routes use (``dispatch.jobs``, ``api.views``, ``webhooks.deliveries``, the node directory,
the workers routes) and every button calls the same function its API route calls. It logs
in with an API key, checked as the API checks it, and keeps a session of its own in Redis
(``store.py``), so the browser never holds the key. ``router.py`` assembles the pages;
``docs/dashboard.md`` shows them.

This package imports nothing at its top level, so ``paths`` can be read by the request
guard without loading the pages.
"""
