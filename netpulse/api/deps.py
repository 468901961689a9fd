"""Dependencies injected into routes: settings and the Redis connection."""

from __future__ import annotations

from fastapi import Request
from redis import Redis

from netpulse.config import Settings


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def base_url(request: Request) -> str:
    """This server's URL as the client reached it (for absolute links in replies)."""
    return str(request.base_url).rstrip("/")


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings
