"""Template plugins: renderers (jinja2) and parsers (textfsm, ttp), one folder each.

The contract they implement is ``netpulse.templates.contract``; third-party packages add more
through the entry-point group ``netpulse.templates``.
"""
