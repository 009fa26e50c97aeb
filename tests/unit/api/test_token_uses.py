"""The in-process record of client-token uses: max_calls held, refusals given back, bounded, expiring."""

from __future__ import annotations

from gateway.api.token_uses import LocalTokenUses


async def test_a_token_creates_at_most_its_calls_and_owns_those_it_created(clock) -> None:
    uses = LocalTokenUses(clock=clock)
    expires = clock() + 60
    assert await uses.claim("t", 2, expires) and await uses.claim("t", 2, expires)
    assert not await uses.claim("t", 2, expires)
    await uses.bind("t", "call-1")
    await uses.release("t")  # the second request created no call
    assert await uses.claim("t", 2, expires)
    assert await uses.owns("t", "call-1") and not await uses.owns("t", "call-2")
    assert not await uses.owns("other", "call-1")


async def test_a_release_never_gives_back_a_call_that_was_created(clock) -> None:
    uses = LocalTokenUses(clock=clock)
    assert await uses.claim("t", 1, clock() + 60)
    await uses.bind("t", "call-1")
    await uses.release("t")
    assert not await uses.claim("t", 1, clock() + 60)


async def test_entries_end_with_their_tokens_and_the_table_is_bounded(clock) -> None:
    uses = LocalTokenUses(max_tokens=2, clock=clock)
    await uses.claim("soon", 1, clock() + 10)
    await uses.claim("later", 1, clock() + 100)
    clock.advance(11)
    await uses.claim("new", 1, clock() + 100)
    assert len(uses) == 2 and not await uses.owns("soon", "x")
    await uses.claim("newest", 1, clock() + 200)  # over the bound: the one nearest its expiry goes
    assert len(uses) == 2
    assert await uses.claim("later", 1, clock() + 100), "forgotten, so counted afresh"
