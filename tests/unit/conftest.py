import pytest


class FakeClock:
    """A monotonic clock that only moves when told to, or when someone sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.oversleep_s = 0.0  # how late every sleep wakes up, like a busy event loop

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.oversleep_s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
