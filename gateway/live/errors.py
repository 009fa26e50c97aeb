"""What a Live failure means for the call: retry, start afresh without the handle, or give up.

The SDK reports a WebSocket close as `APIError` whose `code` is the close code and whose `details` is the
reason (protocol reference 3.4). Gemini closes with 1007 for a bad key or an invalid request and 1008 for an
unknown model: retrying those only repeats the failure, so they are fatal. A resume refused with 1007 means
the handle is unknown or expired: the conversation goes on in a fresh session instead.
"""

from __future__ import annotations

import ssl
from enum import StrEnum

from google.genai import errors
from websockets.exceptions import InvalidStatus

FATAL_CLOSE_CODES = frozenset({1007, 1008})
FATAL_HTTP_STATUSES = frozenset({400, 401, 403, 404})


class Disposition(StrEnum):
    RETRY = "retry"
    DROP_HANDLE = "drop_handle"  # the resume was refused: connect afresh and re-seed the conversation
    FATAL = "fatal"


class LiveFatalError(Exception):
    """The Live session cannot go on: the call must end. `code` is a stable identifier for clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def classify(exc: BaseException, *, resuming: bool) -> Disposition:
    """How to react to `exc`, raised while connecting (resuming = with a handle) or during a session."""
    if isinstance(exc, errors.APIError) and exc.code in FATAL_CLOSE_CODES:
        return Disposition.DROP_HANDLE if resuming and exc.code == 1007 else Disposition.FATAL
    if isinstance(exc, InvalidStatus) and exc.response.status_code in FATAL_HTTP_STATUSES:
        return Disposition.FATAL
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Disposition.FATAL
    return Disposition.RETRY


def describe(exc: BaseException) -> str:
    """One line for logs and error events: the close code and the server's reason where there is one."""
    if isinstance(exc, errors.APIError):
        return f"Live API closed the connection ({exc.code}): {exc.details or exc.message or 'no reason given'}"
    if isinstance(exc, InvalidStatus):
        return f"Live API refused the connection: HTTP {exc.response.status_code}"
    return f"Live API connection failed: {type(exc).__name__}: {exc}"


def fatal_error(exc: BaseException) -> LiveFatalError:
    """The error to end a call with, after `classify` said FATAL."""
    code = "live_rejected"
    if isinstance(exc, errors.APIError):
        code = {1007: "live_invalid_request", 1008: "live_policy"}.get(exc.code, code)
    elif isinstance(exc, ssl.SSLError):
        code = "live_tls"
    return LiveFatalError(code, describe(exc))
