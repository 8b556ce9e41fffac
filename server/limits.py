"""Limits that keep one client or a crowd from exhausting the server: body size, work in flight.

- ``BodySizeLimit`` (raw ASGI, below routing, above every body reader): a declared
  ``Content-Length`` over the limit is answered 413 at once, before the body is read (a client
  that sent ``Expect: 100-continue`` never uploads it); a body without one (chunked) is counted
  chunk by chunk and the read fails with ``BodyTooLarge`` (mapped to 413) as soon as the count
  passes the limit.
- ``LingeringClose``: an answer given before the request body was read (413, 503, 415...) on a
  connection that closes after it (``Connection: close``, HTTP/1.0: Python's urllib) would make
  the kernel reset the connection over the unread bytes, and a client still sending (urllib,
  requests send the whole body before reading) gets "connection reset" instead of the JSON. So,
  as nginx's lingering close does, the answer is written, then the rest of the body is read and
  dropped (at most ``LINGER_BYTES`` / ``LINGER_SECONDS``) before the connection is closed. On a
  keep-alive connection uvicorn itself discards the rest and keeps the connection.
- ``InflightLimit``: at most N requests in ``/classify`` at once (reading, queued or running);
  one more is answered 503 with ``Retry-After`` at once, so an overload cannot queue bodies
  (up to ``max_bytes`` each) without bound.

    app.add_middleware(BodySizeLimit, max_bytes=10 * 1024 * 1024)
    app.add_middleware(LingeringClose)
    inflight = InflightLimit(8)
    with inflight.slot():   # raises ApiError 503 when 8 are already in
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from server.errors import ApiError, error_response

# nginx lingers up to 30 s; an upload the client already started is seconds on any link the
# body limit (10 MB) makes sense for, and the drained bytes are dropped, never kept.
LINGER_SECONDS = 10.0
LINGER_BYTES = 64 * 1024 * 1024
RETRY_AFTER_S = 1  # a busy server frees a slot within an inference or two (milliseconds)


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


class LingeringClose:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _closes_after(scope):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        body_done = not (
            headers.get(b"content-length", b"0") not in (b"", b"0")
            or b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        )
        # A client that asked to be told first (Expect: 100-continue) waits and sends nothing.
        expects = headers.get(b"expect", b"").lower() == b"100-continue"

        async def tracking_receive():
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def lingering_send(message):
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and not body_done
                and not expects
            ):
                await send({**message, "more_body": True})
                await _drain(tracking_receive)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, tracking_receive, lingering_send)


def _closes_after(scope) -> bool:
    """Whether uvicorn will close this connection after the answer (so unread bytes reset it)."""
    if scope.get("http_version") == "1.0":
        return True
    value = dict(scope["headers"]).get(b"connection", b"").lower()
    return b"close" in [t.strip() for t in value.split(b",")]


async def _drain(receive) -> None:
    """Read and drop the rest of the request body, within LINGER_BYTES and LINGER_SECONDS."""
    deadline, dropped = time.monotonic() + LINGER_SECONDS, 0
    with contextlib.suppress(asyncio.TimeoutError):
        while dropped < LINGER_BYTES:
            message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            if message["type"] != "http.request":
                return
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class InflightLimit:
    """Admission control for the inference path: a counter on the event loop (no lock needed)."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0

    @contextlib.contextmanager
    def slot(self):
        if self.count >= self.limit:
            raise ApiError(
                503,
                "overloaded",
                f"the server is busy ({self.limit} requests in progress); retry after {RETRY_AFTER_S} s",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
