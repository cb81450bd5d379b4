"""Errors in the OpenAI shape: `{"error": {"message", "type", "param", "code"}}`, for every 4xx/5xx.

The official `openai` client reads this shape into `APIStatusError.body` / `.message`, so a client
sees the same kind of error from this server as from the hosted API.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("soritune.serve")

# HTTP status -> OpenAI error `type`
_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    503: "server_error",
}


class ApiError(Exception):
    """An error answered as JSON in the OpenAI shape. `code` is a short machine-readable tag."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None):  # noqa: A002 - OpenAI field name
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(message: str, *, type: str = "invalid_request_error", param: str | None = None,  # noqa: A002
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(err: ApiError):
    from fastapi.responses import JSONResponse

    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def install_error_handlers(app) -> None:
    """Answer every error (ours, routing 404/405, validation, unexpected) in the OpenAI shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        _count(request, exc.code or str(exc.status))
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path} (see /v1/models, /v1/audio/transcriptions)"
        _count(request, code)
        return error_response(ApiError(exc.status_code, message, code=code, headers=getattr(exc, "headers", None)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        _count(request, "invalid_value")
        return error_response(ApiError(400, f"{param or 'request'}: {first.get('msg', 'invalid')}", param=param,
                                       code="invalid_value"))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        _count(request, "internal_error")
        return error_response(ApiError(500, f"internal error: {type(exc).__name__}: {exc}", code="internal_error",
                                       type="server_error"))


def _count(request, code: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.inc(code=code)
