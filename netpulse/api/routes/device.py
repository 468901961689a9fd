"""`/device/*`: submit jobs and test connections."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from redis import Redis
from starlette.datastructures import UploadFile

from netpulse.api.deps import get_app_settings, get_redis
from netpulse.api.device_tests import DeviceTests, TestsBusy
from netpulse.api.json_body import BodyRejected, check_json
from netpulse.config import Settings
from netpulse.dispatch import submit
from netpulse.dispatch.views import to_response
from netpulse.drivers import registry as drivers
from netpulse.drivers.base import DriverError
from netpulse.models.job import BulkFailure, BulkResponse, JobInResponse
from netpulse.models.request import BulkExecutionRequest, ExecutionRequest, TestRequest
from netpulse.storage import files

router = APIRouter(prefix="/device", tags=["device"])


async def _read_body(request: Request, conn: Redis, settings: Settings) -> Any:
    """JSON body, or multipart with the JSON in the `request` field and an optional `file`
    (as the client sends an upload); the file is staged and named by `staged_file_id`."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        raw = form.get("request")
        if not isinstance(raw, str):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "a multipart request needs a `request` field holding the job as JSON",
            )
    else:
        raw = await request.body()
    try:
        body = check_json(raw, settings.server.max_json_depth)
    except BodyRejected as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if content_type.startswith("multipart/form-data") and isinstance(upload, UploadFile):
        if not isinstance(body, dict):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the job must be an object")
        data = await upload.read()
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
    return body


#: The job model's own rules for the fields that say how long an upload is staged.
_STAGING_FIELDS = {
    name: TypeAdapter(Annotated[field.annotation, field])
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


def _submission_error(exc: submit.SubmissionError | submit.NoCapacity) -> HTTPException:
    if isinstance(exc, submit.NoCapacity):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


@router.post(
    "/exec",
    status_code=status.HTTP_201_CREATED,
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
) -> JobInResponse:
    """Queue one job on one device."""
    req = ExecutionRequest.model_validate(await _read_body(request, conn, settings))
    try:
        job = await run_in_threadpool(submit.enqueue, req, conn, settings)
    except (submit.SubmissionError, submit.NoCapacity) as exc:
        raise _submission_error(exc) from None
    return to_response(job)


@router.post("/bulk", status_code=status.HTTP_201_CREATED, response_model=BulkResponse)
def bulk(
    body: BulkExecutionRequest,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> BulkResponse:
    """Queue the same job on many devices; bad devices are listed, good ones queued."""
    requests, failed = submit.expand_bulk(body)
    succeeded = []
    for req in requests:
        try:
            succeeded.append(to_response(submit.enqueue(req, conn, settings)))
        except (submit.SubmissionError, submit.NoCapacity) as exc:
            failed.append(BulkFailure(host=req.connection_args.host, reason=str(exc)))
    return BulkResponse(succeeded=succeeded, failed=failed)


@router.post(
    "/test",
    responses={503: {"description": "Every slot for connection tests is taken; try again."}},
)
async def test_connection(body: TestRequest, request: Request) -> Any:
    """Log in to the device and out again; report latency, prompt or version, or why not."""
    driver_class = drivers.get(body.driver)
    validate = getattr(driver_class, "validate_request", None)
    if validate is not None:
        probe = ExecutionRequest(
            driver=body.driver, connection_args=body.connection_args, command="(test)"
        )
        try:
            validate(probe)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    tests: DeviceTests = request.app.state.device_tests
    started = time.monotonic()
    try:
        return await tests.run(lambda: _log_in_and_out(driver_class, body, started))
    except TestsBusy as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})
    except TimeoutError:
        return _test_reply(
            body,
            started,
            {},
            {"type": "timeout", "message": f"no answer within {tests.timeout:g} s"},
        )


def _log_in_and_out(driver_class: Any, body: TestRequest, started: float) -> dict[str, Any]:
    driver = driver_class(body.connection_args, {})
    result: dict[str, Any] = {}
    error = None
    try:
        driver.connect()
        try:
            result.update(driver.probe())
        finally:
            driver.disconnect()
    except DriverError as exc:
        error = {"type": exc.error_type, "message": str(exc)}
    return _test_reply(body, started, result, error)


def _test_reply(
    body: TestRequest, started: float, result: dict[str, Any], error: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "success": error is None,
        "latency": round(time.monotonic() - started, 6),
        "error": error,
        "result": {"driver": body.driver, "host": body.connection_args.host, **result},
        "timestamp": datetime.now(UTC).isoformat(),
    }


__all__ = ["ValidationError", "router"]
