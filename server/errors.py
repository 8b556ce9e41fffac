"""Every failure the server answers is ``{"error": {"code", "message"}}`` with the right status.

Expected problems (bad images, bad queries, oversized bodies, unknown paths) are mapped here, so
no handler builds error JSON by hand and no client ever sees FastAPI's or Starlette's own error
shapes. An unexpected exception still gets the same shape (500, code ``internal``) and a log
line; the tests and the load benchmark assert that it never happens.

    from server.errors import ApiError, install_error_handlers
    install_error_handlers(app)
    raise ApiError(415, "unsupported_media_type", "send multipart/form-data or image/jpeg")
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from bundle.images import ImageError

log = logging.getLogger("server")

# bundle.images.ImageError codes -> HTTP status. A bomb is the client's fault (400), refused
# from its header before any pixel is decoded.
IMAGE_ERROR_STATUS = {"empty": 400, "unsupported_format": 415, "corrupt_image": 400, "image_too_large": 400}
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    503: "not_ready",
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def error_docs(*statuses: int) -> dict:
    """``responses=`` for a route, so /docs shows the error shape for each status it can return."""
    return {s: {"model": ErrorResponse, "description": HTTP_CODES.get(s, "invalid_request")} for s in statuses}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(ImageError)
    async def _image(request: Request, exc: ImageError):
        return error_response(IMAGE_ERROR_STATUS.get(exc.code, 400), exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return error_response(
            exc.status_code,
            HTTP_CODES.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect):
        # The client hung up mid-upload: nobody will read this, and it is not a server fault.
        return error_response(400, "client_disconnected", "the client closed the connection mid-request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal server error (logged)")
