"""The bridge's SIP mappings: refusals to status codes, DTMF in SIP INFO, metadata, dial outcomes."""

from __future__ import annotations

import pytest

from gateway.bridges.gateway_api import GatewayRefused
from gateway.bridges.sip import decline_code, dial_outcome, dtmf_from_info, inbound_metadata, user_of


@pytest.mark.parametrize(("status", "code", "sip"), [
    (422, "no_common_codec", 488), (400, "malformed_sdp", 488), (503, "at_capacity", 486),
    (503, "draining", 486), (429, "rate_limited", 486), (0, "unreachable", 503), (500, "internal", 503),
    (401, "unauthorized", 503),
])
def test_each_gateway_refusal_declines_the_phone_with_a_sip_status(status: int, code: str, sip: int) -> None:
    assert decline_code(GatewayRefused(status, code, "")) == sip


@pytest.mark.parametrize(("kind", "body", "key"), [
    ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", ("5", 160)),
    ("application/dtmf-relay", "Signal= #\nDuration= 250", ("#", 250)),
    ("application/dtmf-relay", "Signal=10\r\nDuration=100", ("*", 100)),
    ("application/dtmf-relay", "Signal=a", ("A", 100)),
    ("application/dtmf", "7", ("7", 100)),
    ("application/dtmf-relay", "Signal=X\r\nDuration=100", None),
    ("application/dtmf-relay", "Duration=100", None),
    ("text/plain", "Signal=5", None),
    (None, None, None),
])
def test_dtmf_is_read_from_sip_info_bodies(kind: str | None, body: str | None, key: tuple[str, int] | None) -> None:
    assert dtmf_from_info(kind, body) == key


@pytest.mark.parametrize(("status", "outcome"), [(486, "busy"), (600, "busy"), (408, "no_answer"),
                                                 (480, "no_answer"), (487, "no_answer"), (603, "rejected"),
                                                 (404, "rejected")])
def test_an_unanswered_dial_is_told_apart_by_its_final_status(status: int, outcome: str) -> None:
    assert dial_outcome(status) == outcome


def test_the_calls_metadata_names_caller_dialled_number_and_custom_headers() -> None:
    metadata = inbound_metadata("support", {
        "username": "sip:+4930123@pbx.example", "displayname": '"Ada"', "callee": "sip:+4940999@gw.example;user=phone",
        "headers": {"X-Ticket": "42", "X-Bad": {"nested": 1}},
    }, "abc@pbx")
    assert metadata == {
        "bridge": "janus-sip", "direction": "inbound", "account": "support", "from": "sip:+4930123@pbx.example",
        "from_name": "Ada", "to": "sip:+4940999@gw.example;user=phone", "dialled": "+4940999",
        "sip_call_id": "abc@pbx", "sip_headers": {"X-Ticket": "42"},
    }
    assert user_of("<sips:bob@example.com>") == "bob" and user_of("tel:+1") is None
