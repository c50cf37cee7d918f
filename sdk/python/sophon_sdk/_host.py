"""Calling the host: WIT errors become :class:`HostError`.

A component reads no files at run time: componentize-py snapshots the interpreter after the
plugin module is imported, so every binding module is imported here, at module level; an
``import`` inside a function would fail when the host calls it.
"""

import importlib
import re

try:
    from componentize_py_types import Err
except ImportError:  # outside a component: linters, documentation tools

    class Err(Exception):  # type: ignore[no-redef]
        pass


class HostError(Exception):
    """A failed host call: ``kind`` is the WIT error case (``not-granted``,
    ``budget-exhausted``, ``invalid-argument``, ``not-found``, ``too-large``, ``timeout``,
    ``rate-limited``, ``unavailable``, ``upstream``, ``malformed-reply``, ``cancelled``,
    ``internal``) and ``message`` the host's explanation, which names the fix where there is one."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    @property
    def permanent(self) -> bool:
        """True when retrying later cannot help."""
        return self.kind in (
            "not-granted",
            "invalid-argument",
            "not-found",
            "too-large",
            "budget-exhausted",
        )


def _kind(error) -> str:
    # Error_NotGranted -> not-granted
    name = type(error).__name__.split("_", 1)[-1]
    return re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()


def from_wit(variant) -> HostError:
    """The :class:`HostError` for a WIT ``error`` variant (``Error_NotGranted("...")``, ...)."""
    return HostError(_kind(variant), str(getattr(variant, "value", variant)))


def call(function, *args):
    """``function(*args)``, raising :class:`HostError` for the host's error variant."""
    try:
        return function(*args)
    except Err as error:
        raise from_wit(error.value) from None


class _Absent:
    """Stands in for an interface the plugin's world does not import."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute):
        raise HostError(
            "not-granted",
            f"this plugin's world does not import sophon:host/{self._name} (a promotion policy "
            "has llm, hcc and run; a strategy has them all)",
        )


def wit_module(name: str):
    """The bindings of ``sophon:host/<name>``, imported now (see the module's note)."""
    try:
        return importlib.import_module(f"wit_world.imports.{name}")
    except ImportError:
        return _Absent(name)
