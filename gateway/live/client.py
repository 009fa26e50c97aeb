"""The google-genai client for the Live side: Gemini, Vertex AI, a custom endpoint, or the embedded emulator.

Every path goes through the real SDK. Only the base URL, the credentials and the TLS trust differ.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from google import genai
from google.genai import types

from gateway.config import LiveBackend, Settings

DEFAULT_API_VERSION = "v1beta"  # the version the Live API documents for BidiGenerateContent
PLACEHOLDER_KEY = "not-set"  # sent to a custom endpoint when no key is configured; the SDK requires one

# websockets.connect() arguments the SDK passes through from async_client_args.
WEBSOCKET_ARGS = {
    "open_timeout": 10,
    # Gemini has been seen answering pings after 8-30 s; the default 20 s ping timeout then closes
    # healthy sessions with 1011 (aicc2025/sip-to-ai#14). Dead sockets are still found, just later.
    "ping_interval": 20,
    "ping_timeout": 60,
    "close_timeout": 2,  # a hung server must not hold up a call's teardown
    # permessage-deflate on base64 audio costs CPU on every chunk for little gain.
    "compression": None,
}


# websockets logs every handshake header at DEBUG, the API key among them: those values are masked.
CREDENTIAL_HEADERS = frozenset({"x-goog-api-key", "authorization"})


class _MaskCredentialHeaders(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() in CREDENTIAL_HEADERS:
            record.args = (args[0], "***")
        return True


logging.getLogger("websockets.client").addFilter(_MaskCredentialHeaders())


@dataclass(frozen=True)
class LiveEndpoint:
    """Where the Live API is: an explicit URL and CA, or None for Google's own endpoints."""

    base_url: str | None = None
    ca_file: Path | None = None


def _proxy_args(endpoint: LiveEndpoint) -> dict[str, object]:
    """A loopback endpoint (the emulator) is never reached through HTTPS_PROXY."""
    host = urlsplit(endpoint.base_url).hostname if endpoint.base_url else None
    if host in ("127.0.0.1", "localhost", "::1"):
        return {"proxy": None}
    return {}


def make_client(settings: Settings, endpoint: LiveEndpoint) -> genai.Client:
    """A client for `settings.live_backend`; `endpoint` carries the emulator's or custom URL and CA."""
    ssl_context = ssl.create_default_context(cafile=str(endpoint.ca_file) if endpoint.ca_file else None)
    vertex = settings.live_backend is LiveBackend.VERTEX
    http_options = types.HttpOptions(
        base_url=endpoint.base_url,
        # Vertex keeps the SDK's own default (v1beta1).
        api_version=settings.live_api_version or (None if vertex else DEFAULT_API_VERSION),
        async_client_args={"ssl": ssl_context, **WEBSOCKET_ARGS, **_proxy_args(endpoint)},
    )
    if vertex:
        return genai.Client(
            vertexai=True,
            project=settings.vertex_project,
            location=settings.vertex_location,
            http_options=http_options,
        )
    return genai.Client(api_key=settings.gemini_api_key or PLACEHOLDER_KEY, http_options=http_options)
