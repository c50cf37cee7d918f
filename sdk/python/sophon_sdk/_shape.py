"""Checks a value against the WIT binding type an export returns, before componentize-py lowers
it: a wrong type there traps the component instance, while a failed check here is an ordinary
error the host reports (``on_phase_end returned KnowledgeUnit.phase = '1' (str), not int``)."""

import dataclasses
import enum
import typing


def problem(value, hint, where: str):
    """What is wrong with ``value`` as a ``hint`` (a binding annotation), or ``None``."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return problem(value, inner[0], where) if len(inner) == 1 else None
    if origin is list:
        if not isinstance(value, list):
            return _wrong(value, "a list", where)
        (item,) = typing.get_args(hint) or (typing.Any,)
        for i, element in enumerate(value):
            found = problem(element, item, f"{where}[{i}]")
            if found:
                return found
        return None
    if hint is str:
        return None if isinstance(value, str) else _wrong(value, "str", where)
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else _wrong(value, "int", where)
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else _wrong(value, "float", where)
    if hint is bool:
        return None if isinstance(value, bool) else _wrong(value, "bool", where)
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or issubclass(hint, enum.Enum)):
        if not isinstance(value, hint):
            return _wrong(value, hint.__name__, where)
        if dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint)
            for field in dataclasses.fields(hint):
                found = problem(getattr(value, field.name), hints[field.name], f"{where}.{field.name}")
                if found:
                    return found
    return None


def _wrong(value, expected: str, where: str) -> str:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{where} = {shown} ({type(value).__name__}), not {expected}"
