"""Dependencies injected into routes: settings and the Redis connection."""

from __future__ import annotations

from fastapi import Request
from redis import Redis

from netpulse.config import Settings


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings
