"""The API's description (/openapi.json) says every reply it can give, and the API-key
scopes each operation accepts (``x-scopes``).

FastAPI documents a route's success and its list-shaped 422. NetPulse also answers with a
sentence (`{"detail": "..."}`) for 403, 404, 409, 413, 422 and 503, and clients generated from
the schema must accept those: this adds them, in one place, to every operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from netpulse.api.auth import OPEN_PATHS, scopes_of

ERROR_REPLY = "ErrorReply"
_REF = f"#/components/schemas/{ERROR_REPLY}"
_LOC_ITEM = {"anyOf": [{"type": "string"}, {"type": "integer"}]}

_ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_REPLY,
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "title": "Detail",
            "description": "A sentence, or (validation) a list of {loc, msg, type}.",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
            ],
        }
    },
}

_WHY = {
    "400": "A query value outside the documented set.",
    "403": "Missing or wrong API key, or a key without the scope (`detail` names it).",
    "404": "No such job, worker, delivery or file.",
    "409": "The request conflicts with the state (e.g. cancelling a job that ended).",
    "413": "The body is larger than server.max_body_bytes.",
    "422": "The request cannot be processed; `detail` says why.",
    "503": "Redis is unreachable, or no capacity right now; try again (see Retry-After).",
}


def _error(code: str) -> dict[str, Any]:
    return {
        "description": _WHY[code],
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_REPLY}"}}
        },
    }


def install(app: FastAPI, routers: Sequence[APIRouter] = ()) -> None:
    """Replace ``app.openapi`` with one that adds the error replies and the scopes of the
    ``routers``' operations (built once, cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components[ERROR_REPLY] = _ERROR_SCHEMA
        components.setdefault(
            "ValidationError",
            {
                "title": "ValidationError",
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        )
        scopes = _route_scopes(routers)
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if (path, method) in scopes:
                    operation["x-scopes"] = scopes[(path, method)]
                responses = operation.setdefault("responses", {})
                codes = ["422", "503"]
                if path not in OPEN_PATHS:
                    codes.append("403")
                if "{" in path:
                    codes.append("404")
                if method in ("post", "put", "patch"):
                    codes.append("413")
                if method == "delete" or path == "/jobs":
                    codes += ["409"] if method == "delete" else ["400"]
                for code in codes:
                    if code == "422" or code not in responses:
                        responses[code] = _error(code)
                for code, response in responses.items():  # declared by the route itself
                    if code in _WHY and "content" not in response:
                        response["content"] = _error(code)["content"]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _route_scopes(routers: Sequence[APIRouter]) -> dict[tuple[str, str], list[str]]:
    """(path, method) -> the scopes its ``needs(...)`` dependency accepts (a router's
    dependencies are among each of its routes')."""
    found: dict[tuple[str, str], list[str]] = {}
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            accepted = [
                scope.value
                for dep in route.dependencies
                if dep.dependency is not None
                for scope in scopes_of(dep.dependency)
            ]
            for method in route.methods or ():
                if accepted:
                    found[(route.path_format, method.lower())] = accepted
    return found
