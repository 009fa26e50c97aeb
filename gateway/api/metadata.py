"""Caps on the caller's `metadata` (calls and client tokens): shown back by the API, never interpreted.

Metadata is kept for as long as a call or token lives, in every replica's memory and in every client token
that carries it, so its size and nesting are bounded like any other input.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import GatewayError

MAX_METADATA_BYTES = 4096  # as compact JSON
MAX_METADATA_DEPTH = 4  # {"a": {"b": [1]}} is 3 deep


def check_metadata(metadata: Any) -> dict[str, Any]:
    """`metadata` if it is a JSON object within the caps; else a 400 `bad_metadata`."""
    if not isinstance(metadata, dict):
        raise GatewayError(400, "bad_metadata", '"metadata" must be a JSON object')
    if _deeper_than(metadata, MAX_METADATA_DEPTH):
        raise GatewayError(400, "bad_metadata", f'"metadata" may nest at most {MAX_METADATA_DEPTH} levels deep')
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise GatewayError(400, "bad_metadata", f'"metadata" is {size} bytes as JSON; at most {MAX_METADATA_BYTES}')
    return metadata


def _deeper_than(value: Any, levels: int) -> bool:
    """Does `value` nest objects and lists more than `levels` deep? (Stops looking one level past.)"""
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if children is None:
        return False
    return levels == 0 or any(_deeper_than(child, levels - 1) for child in children)
