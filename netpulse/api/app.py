"""Build the FastAPI application: settings, Redis, routes, auth, error handlers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry

from netpulse import __version__
from netpulse.api import errors, openapi
from netpulse.api.auth import require_api_key
from netpulse.api.device_tests import DeviceTests
from netpulse.api.guard import RequestGuard
from netpulse.api.routes import (
    audit,
    credentials,
    detached,
    device,
    jobs,
    keys,
    storage,
    system,
    templates,
    webhook_endpoints,
    webhooks,
    workers,
)
from netpulse.api.ui.router import router as dashboard
from netpulse.api.waiter import JobWaiter
from netpulse.audit.database import AuditDatabase
from netpulse.audit.metrics import AuditMetricsCollector
from netpulse.config import ConfigError, Settings, get_settings
from netpulse.runtime.redis_conn import connect
from netpulse.templates import sandbox
from netpulse.webhooks.delivery.metrics import WebhookMetricsCollector

#: Every router that needs an API key (each route names its scope: ``auth.needs``).
SECURED_ROUTERS = tuple(
    module.router
    for module in (
        device,
        jobs,
        workers,
        system,
        webhooks,
        webhook_endpoints,
        storage,
        templates,
        credentials,
        keys,
        detached,
        audit,
    )
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.server.api_key is None:
        raise ConfigError("server.api_key (NETPULSE_SERVER__API_KEY) must be set")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.waiter.start()
        try:
            yield
        finally:
            await app.state.waiter.stop()
            app.state.device_tests.close()
            app.state.templates.close()
            app.state.audit.dispose()
            app.state.redis.close()

    app = FastAPI(
        title="NetPulse",
        version=__version__,
        description="Network devices and Linux hosts as a REST API.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.api_key = settings.server.api_key.get_secret_value()
    # The factory: a Sentinel URL gives a client that follows a failover by itself.
    app.state.redis = connect(settings.redis_url, health_check_interval=30)
    app.state.waiter = JobWaiter(settings.redis_url)
    app.state.started_at = time.time()
    # The process's one sandbox: /template/* and the rendering of submitted jobs share it.
    app.state.templates = sandbox.shared(settings)
    app.state.device_tests = DeviceTests(
        settings.server.max_device_tests, settings.server.device_test_timeout
    )
    app.state.audit = AuditDatabase(settings)  # opened on first use
    app.state.metrics = CollectorRegistry()
    app.state.metrics.register(WebhookMetricsCollector(app.state.redis))
    app.state.metrics.register(
        AuditMetricsCollector(app.state.redis, settings.audit.stream_max_len)
    )

    errors.install(app)
    openapi.install(app, SECURED_ROUTERS)
    # Outermost: the key, then the body's size and shape, before any route reads it.
    app.add_middleware(
        RequestGuard,
        header=settings.server.api_key_header,
        max_body=settings.server.max_body_bytes,
        max_depth=settings.server.max_json_depth,
    )
    secured = [Depends(require_api_key)]
    app.include_router(system.health_router)
    app.include_router(dashboard)  # /ui: its own cookie login, not the key header
    for router in SECURED_ROUTERS:
        app.include_router(router, dependencies=secured)
    return app
