"""What a call needs to go on in another process: the narrow interface between a call and the fleet.

In fleet mode (gateway/fleet/) every replica keeps the `Handoff` of each call it holds in Redis while the call
lives. When that replica is gone, or drains, a resume posted to any other replica starts the call there from
its handoff: the Live session resumes from the newest handle (or, if that is refused, is re-seeded with the
transcript), so the conversation goes on. The resume token itself is never stored, only its hash.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.calls.call import Call

MIGRATED = "migrated"  # end reason of a call that another replica took over: not an end of the conversation


@dataclass(frozen=True)
class Handoff:
    call_id: str
    profile: str
    token_hash: str  # of the resume token the caller holds now
    created_at: float  # wall clock, as GET shows it
    attachments: int  # peer connections so far
    live_handle: str | None  # the newest resumable Live handle
    transcript: tuple[tuple[str, str], ...] = ()  # final turns (role, text), oldest first, for a re-seed
    metadata: dict[str, Any] = field(default_factory=dict)
    events: tuple[str, ...] = ()  # the events history as compact JSON, when it travels with the handoff

    def to_json(self) -> dict[str, Any]:
        """The handoff as JSON (fleet mode mirrors the events history on its own, a few events at a time)."""
        out = {"call_id": self.call_id, "profile": self.profile, "token_hash": self.token_hash,
               "created_at": self.created_at, "attachments": self.attachments, "live_handle": self.live_handle,
               "transcript": [list(turn) for turn in self.transcript], "metadata": self.metadata}
        return {**out, "events": list(self.events)} if self.events else out

    @classmethod
    def from_json(cls, data: Any) -> Handoff:
        """The handoff a replica stored; ValueError if it is not one (another version, a damaged record)."""
        try:
            return cls(
                call_id=str(data["call_id"]), profile=str(data["profile"]), token_hash=str(data["token_hash"]),
                created_at=float(data["created_at"]), attachments=int(data["attachments"]),
                live_handle=data["live_handle"] if isinstance(data["live_handle"], str) else None,
                transcript=tuple((str(role), str(text)) for role, text in data["transcript"]),
                metadata=dict(data.get("metadata") or {}),
                events=tuple(str(message) for message in data.get("events", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a call handoff: {exc!r}") from None

    def accepts(self, token: str) -> bool:
        """Is `token` the resume token this handoff was written with?"""
        return hmac.compare_digest(self.token_hash, token_hash(token))


def handoff_of(call: Call, *, with_events: bool = False) -> Handoff:
    """What another replica needs to go on with `call`."""
    return Handoff(call.id, call.profile.name, token_hash(call.resume_token), call.created_at, call.attachments,
                   call.live.handle, call.live.transcript, call.metadata,
                   tuple(call.events.history.messages) if with_events else ())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
