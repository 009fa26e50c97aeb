"""Errors that reach a client: an HTTP status, a stable code, and a message a person can act on."""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    """Rendered by the API as `{"error": {"code": ..., "message": ...}}` with `status` and `headers`."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
