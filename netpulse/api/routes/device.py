"""`/device/*`: submit jobs and test connections."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from redis import Redis
from starlette.datastructures import UploadFile

from netpulse.api.auth import needs, require_scope
from netpulse.api.deps import get_app_settings, get_redis
from netpulse.api.device_tests import DeviceTests, TestsBusy
from netpulse.api.json_body import BodyRejected, check_json
from netpulse.api.views import to_response
from netpulse.config import Settings
from netpulse.dispatch import connection_test, idempotency, intake, submit
from netpulse.models.job import BulkResponse, JobInResponse
from netpulse.models.request import BulkExecutionRequest, ExecutionRequest, TestRequest
from netpulse.security.api_keys import Scope
from netpulse.storage import files

router = APIRouter(prefix="/device", tags=["device"])

#: A client's key for a submission it may send again (after a timeout): the same key and
#: body within 24 h give the first reply and queue nothing (``dispatch/idempotency.py``).
IDEMPOTENCY_KEY = Header(
    None,
    alias=idempotency.HEADER,
    description="Send the same value when you retry: the first reply comes back and "
    "nothing is queued twice (24 h, per API key). The same key with another body is a 422.",
)


async def _read_body(request: Request, conn: Redis, settings: Settings) -> tuple[Any, str]:
    """JSON body, or multipart with the JSON in the `request` field and an optional `file`
    (as the client sends an upload); the file is staged and named by `staged_file_id`. Also
    the body's digest (the JSON and the file's bytes: a multipart boundary is random), which
    tells a retry from another request with the same ``Idempotency-Key``."""
    content_type = request.headers.get("content-type", "")
    upload = None
    raw: bytes | str
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        field = form.get("request")
        if not isinstance(field, str):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "a multipart request needs a `request` field holding the job as JSON",
            )
        raw = field
    else:
        raw = await request.body()
    body_digest = idempotency.digest(raw if isinstance(raw, bytes) else raw.encode())
    try:
        body = check_json(raw, settings.server.max_json_depth)
    except BodyRejected as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if content_type.startswith("multipart/form-data") and isinstance(upload, UploadFile):
        if not isinstance(body, dict):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the job must be an object")
        data = await upload.read()
        body_digest = idempotency.digest((body_digest + idempotency.digest(data)).encode())
        keep = _seconds(body, "ttl", settings.job.ttl) + _seconds(
            body, "execution_timeout", settings.job.execution_timeout
        )
        try:
            staged = await run_in_threadpool(
                files.stage, conn, data, upload.filename or "upload", keep + 60
            )
        except files.FileTooLarge as exc:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
        body["staged_file_id"] = staged.id
    return body, body_digest


#: The job model's own rules for the fields that say how long an upload is staged.
_STAGING_FIELDS: dict[str, TypeAdapter[Any]] = {
    # An Annotated built at run time is not a type mypy can check.
    name: TypeAdapter(Annotated[field.annotation, field])  # type: ignore[arg-type]
    for name, field in ExecutionRequest.model_fields.items()
    if name in ("ttl", "execution_timeout")
}


def _seconds(body: dict[str, Any], name: str, default: int) -> int:
    """A job's ``ttl`` or ``execution_timeout``, checked by the job model's own rule (the file
    is staged for that long, before the job itself is validated)."""
    value = body.get(name)
    if value is None:
        return default
    try:
        checked = _STAGING_FIELDS[name].validate_python(value)
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"`{name}` must be a whole number of seconds: "
            + exc.errors()[0]["msg"].removeprefix("Value error, "),
        ) from None
    return int(checked) if checked is not None else default


@router.post(
    "/exec",
    dependencies=[needs(Scope.EXEC, Scope.CONFIG)],
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The same Idempotency-Key is still being processed."}},
    response_model=JobInResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ExecutionRequest"}}
            },
        }
    },
)
async def execute(
    request: Request,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> JobInResponse:
    """Queue one job on one device (a key with ``exec`` runs commands; one that changes the
    device, with config lines, a file transfer or an upload, needs ``config``)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        require_scope(request, Scope.CONFIG)  # before the upload is read and staged
    body, body_digest = await _read_body(request, conn, settings)
    req = intake.checked(ExecutionRequest, body)
    caller = require_scope(request, Scope.CONFIG if req.changes_device else Scope.EXEC)
    # SubmissionError (422) and NoCapacity (503) reply through api/errors.
    return await _once(
        idempotency_key,
        conn,
        caller.name,
        body_digest,
        lambda: to_response(submit.enqueue(req, conn, settings, caller.name, client_of(request))),
    )


def client_of(request: Request) -> str | None:
    """The client's address as this server saw it (behind a proxy: the proxy's, unless the
    server runs with uvicorn's ``--proxy-headers``)."""
    return request.client.host if request.client else None


async def _once(key: str | None, conn: Redis, principal: str, body_digest: str, queue: Any) -> Any:
    """Run ``queue`` (in the threadpool) and reply 201, unless the request carries an
    ``Idempotency-Key`` already answered: then the first reply again, queueing nothing."""
    if key is None:
        return await run_in_threadpool(queue)
    replay = idempotency.begin(conn, principal, key, body_digest)
    if replay is not None:
        return Response(
            replay.body,
            status_code=replay.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        reply = await run_in_threadpool(queue)
    except BaseException:
        idempotency.abandon(conn, principal, key)  # nothing was queued: a retry may go
        raise
    idempotency.finish(
        conn, principal, key, body_digest, status.HTTP_201_CREATED, reply.model_dump_json()
    )
    return reply


@router.post(
    "/bulk",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The same Idempotency-Key is still being processed."}},
    response_model=BulkResponse,
    dependencies=[needs(Scope.EXEC, Scope.CONFIG)],
)
async def bulk(
    body: BulkExecutionRequest,
    request: Request,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> BulkResponse:
    """Queue the same job on many devices; bad devices are listed, good ones queued."""
    body = intake.rechecked(body)
    requests, refused = submit.expand_bulk(body)
    changes = any(req.changes_device for req in requests)
    caller = require_scope(request, Scope.CONFIG if changes else Scope.EXEC)

    def queue() -> BulkResponse:
        queued, failed = submit.enqueue_bulk(
            requests, conn, settings, caller.name, client_of(request)
        )
        return BulkResponse(succeeded=[to_response(job) for job in queued], failed=refused + failed)

    body_digest = idempotency.digest(await request.body())
    return await _once(idempotency_key, conn, caller.name, body_digest, queue)


@router.post(
    "/test",
    dependencies=[needs(Scope.EXEC)],
    responses={503: {"description": "Every slot for connection tests is taken; try again."}},
)
async def test_connection(body: TestRequest, request: Request) -> Any:
    """Log in to the device and out again; report latency, prompt or version, or why not."""
    body = intake.rechecked(body)
    # Off the event loop: a credential check may ask Redis or a provider.
    await run_in_threadpool(
        connection_test.check_connection, body.driver, body.connection_args, body.credential
    )
    tests: DeviceTests = request.app.state.device_tests
    started = time.monotonic()
    try:
        result, error = await tests.run(
            lambda: connection_test.log_in_and_out(
                body.driver, body.connection_args, body.credential
            )
        )
    except TestsBusy as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})
    except TimeoutError:
        result = {}
        error = {"type": "timeout", "message": f"no answer within {tests.timeout:g} s"}
    return _test_reply(body, started, result, error)


def _test_reply(
    body: TestRequest, started: float, result: dict[str, Any], error: dict[str, str] | None
) -> dict[str, Any]:
    """The original's reply: ``error`` is the sentence (the public client reads a string);
    ``error_type`` says which kind of failure it was (``connection``, ``authentication``,
    ``timeout``, ...), an extra the client keeps."""
    return {
        "success": error is None,
        "latency": round(time.monotonic() - started, 6),
        "error": None if error is None else error["message"],
        "error_type": None if error is None else str(error["type"]),
        "result": {"driver": body.driver, "host": body.connection_args.host, **result},
        "timestamp": datetime.now(UTC).isoformat(),
    }


__all__ = ["ValidationError", "router"]
