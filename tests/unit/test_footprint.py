"""A single replica talking to a real Live endpoint loads neither redis-py nor the emulator's server (7 MiB of
RSS it has no use for); fleet mode loads the fleet code. Checked in a fresh interpreter: this one has both."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from gateway.app import create_app
from gateway.config import Settings
import gateway.__main__, gateway.lifecycle, gateway.memory  # what `gateway serve` loads besides
create_app(Settings(live_base_url="https://127.0.0.1:9", redis_url=sys.argv[1] or None))
print(json.dumps({name: name in sys.modules for name in ("redis", "gateway.fleet.registry", "gateway.emulator.server")}))
"""


def loaded(redis_url: str) -> dict[str, bool]:
    result = subprocess.run([sys.executable, "-c", PROBE, redis_url], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_a_single_replica_loads_no_redis_client_and_no_emulator() -> None:
    assert loaded("") == {"redis": False, "gateway.fleet.registry": False, "gateway.emulator.server": False}


def test_fleet_mode_loads_the_fleet_code() -> None:
    assert loaded("redis://127.0.0.1:9")["gateway.fleet.registry"] is True
