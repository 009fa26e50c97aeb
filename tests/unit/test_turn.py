"""TURN REST API credentials, as coturn's use-auth-secret checks them, and their WHIP Link headers."""

from __future__ import annotations

import base64
import hashlib
import hmac

from gateway.config import Settings
from gateway.turn import gateway_ice_servers, ice_server_links, ice_servers, turn_credentials

URLS = ("turn:turn.example:3478?transport=udp", "turn:turn.example:3478?transport=tcp")


def test_the_password_is_the_hmac_of_the_timed_username() -> None:
    username, password = turn_credentials("s3cret", "call-1", ttl_s=600, now=1_700_000_000)
    assert username == "1700000600:call-1"
    assert base64.b64decode(password) == hmac.new(b"s3cret", b"1700000600:call-1", hashlib.sha1).digest()


def test_callers_and_the_gateway_get_their_own_users_and_no_secret_means_no_servers() -> None:
    settings = Settings(turn_secret="s3cret", turn_urls=URLS, max_call_s=3600, ice_servers=({"urls": "stun:x"},))
    [caller] = ice_servers(settings, "call-1", now=1000)
    assert caller["urls"] == list(URLS) and caller["username"] == "4600:call-1"
    assert ice_servers(settings, "tok", ttl_s=60, now=1000)[0]["username"] == "1060:tok"
    own, stun = gateway_ice_servers(settings, "call-1")
    assert own["username"].endswith(":gateway.call-1") and stun == {"urls": "stun:x"}
    assert ice_servers(Settings(), "call-1") == []


def test_each_url_becomes_a_link_header() -> None:
    servers = [{"urls": list(URLS), "username": "1:u", "credential": "p+/="}]
    assert ice_server_links(servers) == [
        f'<{url}>; rel="ice-server"; username="1:u"; credential="p+/="; credential-type="password"' for url in URLS
    ]
