"""The package's rooms keep to their rules, read from the imports themselves (ast, no third-party tool).

The rules keep the data path one walk (media -> live -> calls -> api) and let each folder be read, tested and
replaced on its own: DSP knows nothing of the Live link or the calls, the Live link nothing of DSP, the
emulator nothing of the gateway it stands in for, and the caller nothing of the server it calls.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"
MAX_LINES = 400

FORBIDDEN = {
    "media": ("live", "calls", "api", "client", "emulator"),
    "live": ("media", "calls", "api", "client", "emulator"),
    "calls": ("api", "client", "emulator"),
    "emulator": ("calls", "live", "api", "client"),
    "client": ("calls", "live", "api", "emulator"),
    "fleet": ("api", "calls", "live", "media", "client", "emulator"),
    # The SIP bridge is its own process and reaches the gateway over HTTP only, like any client.
    "bridges": ("calls", "live", "media", "api", "client", "emulator"),
}


def imported_modules(path: Path) -> set[str]:
    """Every gateway module `path` imports, relative imports resolved, at any depth of the file."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ((base,) if base else ()))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "gateway" or name.startswith("gateway.")}


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_relative_imports_are_resolved() -> None:
    # The emulator imports its own parts relatively; the rules must see them as gateway.emulator.*.
    assert {"gateway.emulator.server", "gateway.emulator.wire"} <= imported_modules(PACKAGE / "emulator" / "__init__.py")


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_imports_nothing_it_must_not(room: str) -> None:
    broken = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        for module in imported_modules(path):
            if room_of(module) in FORBIDDEN[room]:
                broken.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not broken, "\n".join(broken)


def test_every_room_named_in_the_rules_exists() -> None:
    assert all((PACKAGE / room / "__init__.py").is_file() for room in FORBIDDEN)


def test_no_module_is_past_400_lines() -> None:
    long = [f"{p.relative_to(PACKAGE.parent)}: {n}" for p in sorted(PACKAGE.rglob("*.py")) if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, "split these by concern:\n" + "\n".join(long)
