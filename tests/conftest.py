"""Shared by every test: media and servers stay on 127.0.0.1; the gateway fixtures come from tests/fixtures.py."""

from gateway.rtc import restrict_host_addresses

# aioice would otherwise gather candidates on every interface; tests only ever use loopback.
restrict_host_addresses(["127.0.0.1"])

pytest_plugins = ["tests.fixtures", "tests.coturn"]
