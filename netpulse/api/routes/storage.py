"""`/storage/fetch/{file_id}`: files downloaded from devices (authenticated like every route)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response, status
from redis import Redis

from netpulse.api.deps import get_redis
from netpulse.storage import files

router = APIRouter(prefix="/storage", tags=["storage"])


@router.get("/fetch/{file_id}", response_class=Response)
def fetch(file_id: str, conn: Redis = Depends(get_redis)) -> Response:
    """The file's bytes; its SHA-256 in `X-Checksum-SHA256`."""
    found = files.read(conn, file_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {file_id!r} (unknown or expired)")
    meta, data = found
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{meta.name}"',
            "X-Checksum-SHA256": meta.sha256,
        },
    )
