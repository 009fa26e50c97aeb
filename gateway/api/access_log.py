"""The HTTP access log, with credentials taken out: a client token can arrive in a URL.

The demo page takes its client token as `/?token=...` (a page has nothing else to carry it), so aiohttp's
default line, which prints the request line and the Referer (the page's own address, sent with every fetch it
makes), would write a live credential into the log. This logger writes the same facts with every `token`
query value replaced by `***`.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

SECRET_PARAMETERS = frozenset({"token"})


def redacted(url: URL) -> str:
    """`url` as text, with every secret query parameter's value hidden."""
    if not SECRET_PARAMETERS.intersection(url.query):
        return str(url)
    query = [(name, "***" if name in SECRET_PARAMETERS else value) for name, value in url.query.items()]
    return str(url.with_query(query))


class AccessLogger(AbstractAccessLogger):
    """One line per request: client, request line, status, bytes sent, seconds, Referer and User-Agent."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        referer = request.headers.get("Referer", "-")
        self.logger.info('%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s" "%s"', request.remote, request.method,
                         redacted(request.rel_url), *request.version, response.status, response.body_length,
                         time, redacted(URL(referer)) if referer != "-" else "-",
                         request.headers.get("User-Agent", "-"))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
