"""Plugin implementations, one package per kind and one folder per plugin.

``netpulse/plugins/<kind>/<name>/__init__.py`` lists its class in ``__all__``. Only
implementations live here: each kind's contract and registry are in core
(``netpulse.drivers``, ``netpulse.webhooks.callers``, ``netpulse.templates.contract``,
``netpulse.schedulers``; all re-exported by ``netpulse.plugin_api``), and core never
imports this package; the registries find it by name (``netpulse.registry``).
"""
