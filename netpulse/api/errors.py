"""Error replies: every client error is a 4xx whose `detail` a person can read.

Validation errors keep FastAPI's list shape (`loc`, `msg`, `type`), which the public client
reads, but never echo the submitted value back (it may hold a password).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from netpulse.errors import NetPulseError, Unavailable
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS

log = logging.getLogger(__name__)

#: What a client reads while Redis restarts or fails over (503, ``Retry-After: 2``).
REDIS_AWAY_MESSAGE = "the job store (Redis) is unreachable right now; try again shortly"


def clean_errors(errors: list[Any]) -> list[dict[str, Any]]:
    cleaned = []
    for err in errors:
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if err.get("type") == "json_invalid":
            msg = "the request body is not valid JSON: " + str(
                (err.get("ctx") or {}).get("error", msg)
            )
        elif err.get("type") == "missing":
            msg = "this field is required"
        cleaned.append({"loc": list(err.get("loc", ())), "msg": msg, "type": err.get("type")})
    return cleaned


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": clean_errors(list(exc.errors()))}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _model_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        errors = [{**e, "loc": ["body", *e.get("loc", ())]} for e in exc.errors()]
        return JSONResponse({"detail": clean_errors(errors)}, status_code=422)

    @app.exception_handler(NetPulseError)
    async def _domain_error(request: Request, exc: NetPulseError) -> JSONResponse:
        """Every NetPulse error becomes its status and its sentence (one place for all)."""
        headers = {}
        if isinstance(exc, Unavailable) and exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        if exc.http_status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status, headers=headers)

    async def _redis_away(request: Request, exc: Exception) -> JSONResponse:
        # Redis restarting or failing over: a retryable condition, not a server bug.
        log.warning("%s %s: Redis is unreachable (%s)", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": REDIS_AWAY_MESSAGE},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    for error in REDIS_OUTAGE_ERRORS:
        app.add_exception_handler(error, _redis_away)
