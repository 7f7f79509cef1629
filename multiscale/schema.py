"""TOML tables -> frozen, typed dataclasses, checked field by field.

Unknown keys are errors; every error names the key path, the value and what was expected.
Case files are data: nothing in them is ever imported or executed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, get_args, get_origin


class CaseError(ValueError):
    """A case file that does not match the schema (reported to the user, exit code 2)."""


def _type_name(tp) -> str:
    origin = get_origin(tp)
    if origin is tuple:
        args = get_args(tp)
        inner = _type_name(args[0]) if args else "value"
        return f"array of {inner}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return "table"
    return {float: "number", int: "integer", str: "string", bool: "boolean"}.get(tp, str(tp))


def convert(tp, value: Any, where: str):
    """Check ``value`` against the annotation ``tp`` and convert it (lists -> tuples)."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(option, value, where)
            except CaseError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise CaseError(f"{where}: expected a table, got {value!r}")
        return build(tp, value, where)
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise CaseError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], v, f"{where}[{k}]") for k, v in enumerate(value))
        if len(value) != len(args):
            raise CaseError(f"{where}: expected {len(args)} entries, got {value!r}")
        return tuple(convert(a, v, f"{where}[{k}]") for k, (a, v) in enumerate(zip(args, value)))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CaseError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CaseError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise CaseError(f"{where}: expected a {_type_name(tp)}, got {value!r}")
        return value
    if origin is typing.Literal:
        if value not in get_args(tp):
            raise CaseError(f"{where}: expected one of {list(get_args(tp))}, got {value!r}")
        return value
    raise TypeError(f"schema: unsupported annotation {tp!r} at {where}")


def build(cls, table: dict, where: str = ""):
    """Construct dataclass ``cls`` from a TOML table, rejecting unknown keys and bad types."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise CaseError(f"{prefix}{unknown[0]}: unknown key (allowed here: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in table.items():
        kwargs[name] = convert(hints[name], value, f"{prefix}{name}")
    missing = [n for n, f in fields.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise CaseError(f"{prefix}{missing[0]}: required key is missing")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise CaseError(f"{where or 'case'}: {exc}") from None
