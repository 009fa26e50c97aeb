"""Function declarations in the setup, and the plausible arguments of the emulator's tool calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .wire import INVALID_ARGUMENT, ProtocolError

# One plausible value per declared parameter type (Schema types, or JSON-schema types in parametersJsonSchema).
EXAMPLE_VALUES: dict[str, Any] = {"STRING": "test", "NUMBER": 1, "INTEGER": 1, "BOOLEAN": True}


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    parameters: tuple[tuple[str, str], ...]  # (parameter name, upper-case type)

    def example_args(self) -> dict[str, Any]:
        return {name: EXAMPLE_VALUES[kind] for name, kind in self.parameters if kind in EXAMPLE_VALUES}


def _parameters(declaration: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Parameter names and types; a schema the emulator cannot read just yields no arguments."""
    schema = declaration.get("parameters") or declaration.get("parametersJsonSchema") or {}
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return ()
    out = []
    for name, prop in properties.items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        out.append((str(name), kind.upper() if isinstance(kind, str) else ""))
    return tuple(out)


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ProtocolError(INVALID_ARGUMENT, f"{what} must be a list of objects")
    return value


def declared_functions(tools: Any) -> tuple[FunctionSpec, ...]:
    """The functions in `setup.tools` (keys already camelCase), in declaration order."""
    if tools is None:
        return ()
    specs = []
    for tool in _objects(tools, "setup.tools"):
        for declaration in _objects(tool.get("functionDeclarations", []), "functionDeclarations"):
            name = declaration.get("name")
            if not isinstance(name, str) or not name:
                raise ProtocolError(INVALID_ARGUMENT, "a function declaration needs a name")
            specs.append(FunctionSpec(name, _parameters(declaration)))
    return tuple(specs)
