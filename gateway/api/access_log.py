"""The HTTP access log, with credentials taken out: a client token can arrive in a URL.

The demo page takes its client token as `/?token=...` (a page has nothing else to carry it), so aiohttp's
default line, which prints the request line and the Referer (the page's own address, sent with every fetch it
makes), would write a live credential into the log. This logger writes the same facts with every `token`
query value replaced by `***`.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_SECRET_VALUE = re.compile(r"([?&]token=)[^&#]*")


def redacted(url: str) -> str:
    """`url` with every `token` query value hidden. Text, not parsed: a Referer is whatever the client sent."""
    return _SECRET_VALUE.sub(r"\1***", url)


class AccessLogger(AbstractAccessLogger):
    """One line per request: client, request line, status, bytes sent, seconds, Referer and User-Agent."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s" "%s"', request.remote, request.method,
                         redacted(str(request.rel_url)), *request.version, response.status, response.body_length,
                         time, redacted(request.headers.get("Referer", "-")), request.headers.get("User-Agent", "-"))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
