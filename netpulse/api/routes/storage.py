"""`/storage/fetch/{file_id}`: files downloaded from devices (authenticated like every route)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Response, status
from redis import Redis

from netpulse.api.auth import needs
from netpulse.api.deps import get_redis
from netpulse.security.api_keys import Scope
from netpulse.storage import files

router = APIRouter(prefix="/storage", tags=["storage"])


def content_disposition(name: str) -> str:
    """``attachment`` with the file's name as RFC 6266 asks: an ASCII fallback in ``filename``
    (no quote, backslash or control character, so nothing can end the parameter or the
    header) and the real name, percent-encoded UTF-8, in ``filename*`` (RFC 5987)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1] or "download"
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    fallback = "".join(c if c.isprintable() and c not in '"\\;' else "_" for c in ascii_name)
    fallback = fallback.strip() or "download"
    encoded = quote(base.encode("utf-8", "surrogatepass"), safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


@router.get("/fetch/{file_id}", response_class=Response, dependencies=[needs(Scope.READ)])
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
            "Content-Disposition": content_disposition(meta.name),
            "X-Checksum-SHA256": meta.sha256,
        },
    )
