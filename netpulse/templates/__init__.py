"""Template rendering and parsing shared by the API and device jobs.

``sources`` turns a template reference (inline text, ``file:``, ``http(s)://``) into text;
``service`` picks the plugin (``netpulse.plugins.templates``) and runs it. Nothing here
imports FastAPI, so workers use it as the controller does.
"""
