"""The dashboard's one router: every page's routes, none in the API's schema.

Included by ``api/app.py`` outside the API-key dependency: the request guard lets ``/ui``
through without the key header (``paths.is_ui_path``) and each page checks the session
cookie itself (``access.py``).
"""

from __future__ import annotations

from fastapi import APIRouter

from netpulse.api.ui import audit, deliveries, devices, endpoints, jobs, session, workers

router = APIRouter(include_in_schema=False)
for page in (session, jobs, devices, workers, deliveries, endpoints, audit):
    router.include_router(page.router)
