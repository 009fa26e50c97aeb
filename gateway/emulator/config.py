"""Settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class TimingMode(StrEnum):
    """How reply audio is paced on the wire."""

    REALTIME = "realtime"  # chunk k leaves when the audio before it would have finished playing
    BURST = "burst"  # faster than real time, jittery (the default; what field reports describe most)
    STALL = "stall"  # like realtime, with 1-3 gaps of 0.3-1.5 s inside each reply


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    mode: str = TimingMode.BURST
    seed: int | None = None  # makes chunk sizes and timing deterministic per connection
    lifetime_s: float | None = None  # goAway, then close 1011, this long after a connection opens
    goaway_notice_s: float = 10.0  # goAway comes min(this, lifetime_s / 2) before the close
    api_key: str | None = None  # None = any key (or none) is accepted
    tool_calls: bool = False  # answer user turns with a toolCall when the setup declares functions
    exclusive_resume: bool = False  # refuse (1011) resuming a conversation that another connection holds open
    state_dir: Path | None = None  # where the certificate goes; None = a temporary directory

    def __post_init__(self) -> None:
        if self.mode not in set(TimingMode):
            raise ValueError(f"mode must be one of {', '.join(TimingMode)}, not {self.mode!r}")
        if self.lifetime_s is not None and self.lifetime_s <= 0:
            raise ValueError("lifetime_s must be positive")
        if self.goaway_notice_s < 0:
            raise ValueError("goaway_notice_s must not be negative")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be in 0..65535")

    @property
    def goaway_at_s(self) -> float | None:
        """Seconds after opening at which a connection gets its goAway (None without a lifetime)."""
        if self.lifetime_s is None:
            return None
        return self.lifetime_s - min(self.goaway_notice_s, self.lifetime_s / 2)
