"""A call's handoff survives the trip through Redis's JSON, refuses what is not one, and checks tokens by hash."""

from __future__ import annotations

import json

import pytest

from gateway.calls.handoff import Handoff, token_hash


def handoff(**changes: object) -> Handoff:
    fields = {"call_id": "c1", "profile": "phone", "token_hash": token_hash("t0k3n"), "created_at": 1.5,
              "attachments": 2, "live_handle": "h1", "transcript": (("user", "[speech 1.00 s]"), ("model", "reply 1")),
              "metadata": {"crm": 7}}
    return Handoff(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_handoff_comes_back_from_its_json_unchanged() -> None:
    original = handoff()
    assert Handoff.from_json(json.loads(json.dumps(original.to_json()))) == original
    assert Handoff.from_json(handoff(live_handle=None).to_json()).live_handle is None


@pytest.mark.parametrize("damaged", [None, [], {}, {"call_id": "c1"}, {**handoff().to_json(), "attachments": "x"},
                                     {**handoff().to_json(), "transcript": [["only-a-role"]]}])
def test_what_is_not_a_handoff_is_refused_with_value_error(damaged: object) -> None:
    with pytest.raises(ValueError, match="not a call handoff"):
        Handoff.from_json(damaged)


def test_the_token_is_checked_against_its_hash_and_never_stored() -> None:
    stored = handoff()
    assert stored.accepts("t0k3n")
    assert not stored.accepts("t0k3m") and not stored.accepts("")
    assert "t0k3n" not in json.dumps(stored.to_json())
