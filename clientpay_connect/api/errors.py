"""The JSON error shape of API.md: {"error", "message", "errors": [{"field", "message"}]}."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response


class ApiError(Exception):
    """Raised by API code; rendered as the contract's error body with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message, "errors": self.errors}
        body.update(self.extra)
        return body


class FieldErrors(ApiError):
    """422 with one entry per field that is wrong."""

    def __init__(self, errors: list[dict[str, str]], message: str | None = None):
        super().__init__(
            422,
            "validation_error",
            message or "Some fields need attention.",
            errors,
        )


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(code: str, message: str, **extra: Any) -> ApiError:
    return ApiError(409, code, message, extra=extra)


def error_response(request: Request, error: ApiError) -> Response:
    response = Response(json_body=error.body(), status=error.status, charset="utf-8")
    response.content_type = "application/json"
    return response


def is_api_request(request: Request) -> bool:
    return "/api/v1/" in request.path_info or request.path_info.endswith("/api/v1")
