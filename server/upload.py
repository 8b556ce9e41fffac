"""Get the image bytes out of a ``/classify`` request: a multipart upload or a raw image body.

Bodies are read as streams (the ``BodySizeLimit`` middleware counts them on the way in);
multipart files are spooled by Starlette (to disk above 1 MB), so neither form holds more than
the limit in memory.

    data = await read_image(request)   # bytes, or raises ApiError (415 / 422 / 400)
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request

from server.errors import ApiError

RAW_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "application/octet-stream",
)
FIELD = "file"

OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "description": f"the photo: a multipart upload in field `{FIELD}`, or the raw bytes with an "
        "image Content-Type. The format is read from the bytes, not the header.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {FIELD: {"type": "string", "format": "binary"}},
                }
            },
            **{
                t: {"schema": {"type": "string", "format": "binary"}} for t in ("image/jpeg", "image/png", "image/webp")
            },
        },
    }
}


async def read_image(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        # One file, a few small fields at most: a form that is mostly parts is an attack.
        async with request.form(max_files=1, max_fields=8, max_part_size=64 * 1024) as form:
            upload = form.get(FIELD)
            if not isinstance(upload, UploadFile):
                raise ApiError(422, "missing_file", f"multipart body has no file in field '{FIELD}'")
            return await upload.read()
    if ctype in RAW_TYPES:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
        return bytes(body)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {ctype or '(none)'!r} is not accepted: send multipart/form-data "
        f"with a '{FIELD}' field, or the image bytes as image/jpeg, image/png or image/webp",
    )
