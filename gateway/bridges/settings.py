"""The SIP bridge's settings: flags, SIP_BRIDGE_* variables (flags win), and a TOML file of SIP accounts.

With no account file the bridge runs in direct mode: one account that takes INVITEs sent straight to Janus,
registered with the bridge's own registrar so the bridge learns (and prints) where Janus listens.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DIRECT = "direct"


class BridgeConfigError(ValueError):
    """A setting or account that cannot be used; the message names it."""


@dataclass(frozen=True)
class Account:
    """One SIP identity the bridge takes (and places) calls as."""

    name: str
    username: str  # the SIP URI to register, e.g. sip:support@pbx.example.com
    secret: str | None = None
    proxy: str | None = None  # the registrar, e.g. sip:pbx.example.com:5060 (default: the URI's host)
    authuser: str | None = None
    display_name: str | None = None
    profile: str | None = "phone"  # the gateway profile for its calls
    routes: Mapping[str, str] = field(default_factory=dict)  # dialled number -> profile
    max_calls: int = 10  # calls at once: one Janus handle each (a registered master and its helpers)
    register_ttl: int = 300

    def profile_for(self, dialled: str | None) -> str | None:
        return self.routes.get(dialled or "", self.profile)


@dataclass(frozen=True)
class BridgeSettings:
    janus_url: str = "ws://127.0.0.1:8188"
    gateway_url: str = "http://127.0.0.1:8080"
    gateway_token: str | None = None  # bearer token for the gateway's API
    host: str = "127.0.0.1"  # the bridge's own HTTP API (dialling out, health)
    port: int = 8090
    api_tokens: tuple[str, ...] = ()  # bearer tokens the bridge's API requires; empty = open
    accounts: tuple[Account, ...] = ()
    direct_host: str = "127.0.0.1"  # direct mode: where the bridge's registrar listens (Janus must reach it)
    direct_user: str = "gemini"
    direct_profile: str = "phone"
    direct_max_calls: int = 10
    ring_s: float = 30.0  # an outbound call not answered by then is cancelled (no_answer)
    gateway_lost_s: float = 15.0  # the gateway unreachable this long during a call: hang the phone up
    log_level: str = "INFO"

    @property
    def direct(self) -> bool:
        return not self.accounts

    def lines(self) -> tuple[Account, ...]:
        """The accounts to open: the configured ones, or the direct one."""
        if self.accounts:
            return self.accounts
        return (Account(name=DIRECT, username=f"sip:{self.direct_user}@{self.direct_host}", secret="direct",
                        profile=self.direct_profile, max_calls=self.direct_max_calls),)

    @classmethod
    def load(cls, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> BridgeSettings:
        env = os.environ if env is None else env
        given = {k: v for k, v in (flags or {}).items() if v is not None}
        values: dict[str, Any] = {}
        for name, variable, kind in _FIELDS:
            raw = given.get(name, env.get(variable))
            if raw is None or raw == "":
                continue
            try:
                values[name] = _convert(kind, raw)
            except ValueError as exc:
                raise BridgeConfigError(f"{variable}={raw!r}: {exc}") from None
        accounts_file = given.get("accounts_file", env.get("SIP_BRIDGE_ACCOUNTS"))
        if accounts_file:
            values["accounts"] = load_accounts(Path(accounts_file), env)
        return cls(**values)


_FIELDS = (
    ("janus_url", "SIP_BRIDGE_JANUS_URL", "str"),
    ("gateway_url", "SIP_BRIDGE_GATEWAY_URL", "str"),
    ("gateway_token", "SIP_BRIDGE_GATEWAY_TOKEN", "str"),
    ("host", "SIP_BRIDGE_HOST", "str"),
    ("port", "SIP_BRIDGE_PORT", "int"),
    ("api_tokens", "SIP_BRIDGE_API_TOKENS", "csv"),
    ("direct_host", "SIP_BRIDGE_DIRECT_HOST", "str"),
    ("direct_user", "SIP_BRIDGE_DIRECT_USER", "str"),
    ("direct_profile", "SIP_BRIDGE_PROFILE", "str"),
    ("direct_max_calls", "SIP_BRIDGE_MAX_CALLS", "int"),
    ("ring_s", "SIP_BRIDGE_RING_SECONDS", "float"),
    ("gateway_lost_s", "SIP_BRIDGE_GATEWAY_LOST_SECONDS", "float"),
    ("log_level", "SIP_BRIDGE_LOG_LEVEL", "str"),
)


def _convert(kind: str, raw: Any) -> Any:
    if not isinstance(raw, str):
        return tuple(raw) if kind == "csv" else raw
    match kind:
        case "int":
            return int(raw)
        case "float":
            return float(raw)
        case "csv":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def load_accounts(path: Path, env: Mapping[str, str]) -> tuple[Account, ...]:
    """Accounts from `[accounts.<name>]` tables; `secret_env = "VAR"` reads the secret from the environment."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BridgeConfigError(f"{path}: {exc}") from None
    accounts = []
    for name, table in data.get("accounts", {}).items():
        table = dict(table)
        if "secret_env" in table:
            variable = table.pop("secret_env")
            if variable not in env:
                raise BridgeConfigError(f"account {name!r}: secret_env {variable} is not set")
            table["secret"] = env[variable]
        try:
            account = Account(name=name, **table)
        except TypeError as exc:
            raise BridgeConfigError(f"account {name!r}: {exc}") from None
        if not account.username.startswith(("sip:", "sips:")) or not account.secret:
            raise BridgeConfigError(f"account {name!r}: needs a sip: username and a secret")
        if account.max_calls < 1:
            raise BridgeConfigError(f"account {name!r}: max_calls must be at least 1")
        accounts.append(account)
    if not accounts:
        raise BridgeConfigError(f"{path}: no [accounts.<name>] table")
    return tuple(accounts)
