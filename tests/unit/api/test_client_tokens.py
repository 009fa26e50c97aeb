"""Client tokens: signed with the first key, verified with any, refused when expired, altered or foreign."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway.api.client_tokens import TokenSigner, looks_like_jwt
from gateway.errors import GatewayError

NEW = ("k2", "new-secret-0123456789abcdef0123456789")
OLD = ("k1", "old-secret-0123456789abcdef0123456789")


def refusal(signer: TokenSigner, token: str) -> tuple[int, str]:
    with pytest.raises(GatewayError) as refused:
        signer.verify(token)
    return refused.value.status, refused.value.code


def test_a_minted_token_carries_its_grant_and_names_the_key_that_signed_it() -> None:
    signer = TokenSigner([NEW, OLD])
    token, minted = signer.mint("phone", 300, 2, {"user": "42"})
    assert looks_like_jwt(token) and jwt.get_unverified_header(token)["kid"] == "k2"
    claims = signer.verify(token)
    assert claims == minted
    assert (claims.profile, claims.max_calls, dict(claims.metadata)) == ("phone", 2, {"user": "42"})
    assert time.time() + 299 <= claims.expires_at <= time.time() + 301
    assert signer.mint("phone", 300, 1, {})[1].id != claims.id, "every token has its own id"


def test_every_configured_key_verifies_and_a_key_that_is_gone_does_not() -> None:
    old_token, _ = TokenSigner([OLD]).mint("default", 60, 1, {})
    assert TokenSigner([NEW, OLD]).verify(old_token).profile == "default"
    assert refusal(TokenSigner([NEW]), old_token) == (403, "forbidden")


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")  # the HS512 forgery's key
def test_an_expired_token_is_a_401_and_any_other_fault_a_403() -> None:
    signer = TokenSigner([NEW])
    expired, _ = TokenSigner([NEW], clock=lambda: time.time() - 120).mint("default", 60, 1, {})
    assert refusal(signer, expired) == (401, "token_expired")

    token, _ = signer.mint("default", 60, 1, {})
    header, payload, signature = token.split(".")
    assert refusal(signer, f"{header}.{payload}.{signature[::-1]}") == (403, "forbidden")
    key = NEW[1]
    for forged in (
        jwt.encode({"jti": "x", "iat": 1, "exp": time.time() + 60, "profile": "default", "max_calls": 1},
                   None, algorithm="none", headers={"kid": "k2"}),  # unsigned
        jwt.encode({"jti": "x", "iat": 1, "exp": time.time() + 60, "profile": "default", "max_calls": 1},
                   key, algorithm="HS512", headers={"kid": "k2"}),  # another algorithm
        jwt.encode({"jti": "x", "iat": 1, "exp": time.time() + 60, "profile": "default", "max_calls": 0},
                   key, algorithm="HS256", headers={"kid": "k2"}),  # claims the gateway never mints
        jwt.encode({"iat": 1, "exp": time.time() + 60, "profile": "default", "max_calls": 1},
                   key, algorithm="HS256", headers={"kid": "k2"}),  # no id to count its uses by
        "a.b.c",
    ):
        assert refusal(signer, forged) == (403, "forbidden"), forged


def test_a_signer_without_configured_keys_makes_its_own() -> None:
    from gateway.config import Settings

    first, second = TokenSigner.from_settings(Settings()), TokenSigner.from_settings(Settings())
    token, _ = first.mint("default", 60, 1, {})
    assert first.verify(token).profile == "default"
    assert refusal(second, token) == (403, "forbidden"), "a key made at start-up is this process's own"
