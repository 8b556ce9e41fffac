"""Cap request bodies while they stream in, so an oversized upload never sits in memory.

A raw ASGI middleware (below FastAPI's routing, above every body reader): a declared
``Content-Length`` over the limit is answered 413 at once, before the body is read (a client
that sent ``Expect: 100-continue`` never uploads it); a body without one (chunked) is counted
chunk by chunk and the read fails with ``BodyTooLarge`` (mapped to 413) as soon as the count
passes the limit. uvicorn discards whatever the client still sends.

    app.add_middleware(BodySizeLimit, max_bytes=10 * 1024 * 1024)
"""
from __future__ import annotations

from server.errors import ApiError, error_response


class BodyTooLarge(ApiError):
    def __init__(self, max_bytes: int):
        super().__init__(413, "body_too_large", f"request body is over the limit of {max_bytes} bytes")


class BodySizeLimit:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            err = BodyTooLarge(self.max_bytes)
            return await error_response(err.status, err.code, err.message)(scope, receive, send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
