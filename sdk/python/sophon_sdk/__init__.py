"""Sophon SDK for Python plugins.

A Python plugin is a module that defines a class and exports it with one call; ``sophon plugin
build`` turns the module into a WebAssembly component with componentize-py::

    import sophon_sdk as sophon

    class Hello(sophon.Strategy):
        def run(self, config: dict) -> sophon.Outcome:
            reply = sophon.llm.chat("Name one model for tabular data.", max_tokens=32)
            return sophon.Outcome(summary=reply.text)

    StrategyApi = sophon.export_strategy(Hello)

Host capabilities are the submodules ``llm``, ``jobs``, ``hcc``, ``task``, ``run`` and
``artifacts``, with the same calls and builders as the Rust SDK. A failed host call raises
:class:`HostError` (its ``kind`` is the WIT error case, e.g. ``"not-granted"``); an exception
that escapes ``run`` becomes the run's error, with its traceback's last lines.
"""

from dataclasses import dataclass
import json
import traceback

from . import _shape, artifacts, config, hcc, jobs, llm, run, task  # noqa: F401
from ._host import Err, HostError  # noqa: F401

__all__ = [
    "Strategy",
    "PromotionPolicy",
    "Outcome",
    "HostError",
    "export_strategy",
    "export_promotion_policy",
    "artifacts",
    "config",
    "hcc",
    "jobs",
    "llm",
    "run",
    "task",
]


@dataclass
class Outcome:
    """What a strategy's ``run`` returns: the best node (if any), the nodes it made, a summary."""

    summary: str = ""
    best_node: str | None = None
    nodes: int = 0


class Strategy:
    """A search strategy. The host calls ``run`` once per run (again on resume, replaying every
    host answer), so everything it does must follow from host answers, ``config`` and
    ``run.info().seed``."""

    def run(self, config: dict) -> Outcome:
        raise NotImplementedError("a Strategy implements run(self, config)")


class PromotionPolicy:
    """A memory promotion policy: task descriptor, knowledge at a phase's end, wisdom at the
    task's end. Arguments and results are the WIT records (see ``sophon_sdk.hcc``)."""

    def describe_task(self, task_info):
        raise NotImplementedError

    def on_phase_end(self, trace):
        return None

    def on_task_end(self, trace):
        return []


def _failure(error: BaseException) -> str:
    if isinstance(error, HostError):
        return str(error)
    lines = traceback.format_exception(error)
    text = "".join(lines[-6:]).strip()
    if isinstance(error, ModuleNotFoundError):
        text += (
            "\n(a component reads no files at run time: import modules at the top of app.py, "
            "and bundle only pure-Python packages beside it)"
        )
    return text


def export_strategy(cls):
    """The export class componentize-py looks for: assign it to ``StrategyApi`` in the module
    you build (``StrategyApi = export_strategy(MyStrategy)``)."""
    exports = _exports("strategy", "StrategyApi")
    from wit_world.exports import strategy_api

    class StrategyApi(exports.StrategyApi):
        def run(self, config_text: str) -> strategy_api.Outcome:
            try:
                settings = json.loads(config_text) if config_text.strip() else {}
                outcome = cls().run(settings)
            except Exception as error:  # noqa: BLE001 - every failure becomes the run's error
                raise Err(_failure(error))
            if not isinstance(outcome, Outcome):
                raise Err(f"{cls.__name__}.run returned {type(outcome).__name__}, not sophon_sdk.Outcome")
            if not isinstance(outcome.nodes, int) or isinstance(outcome.nodes, bool) or outcome.nodes < 0:
                raise Err(f"{cls.__name__}.run returned Outcome(nodes={outcome.nodes!r}): a count of nodes")
            return strategy_api.Outcome(
                best_node=None if outcome.best_node is None else str(outcome.best_node),
                nodes=outcome.nodes,
                summary=str(outcome.summary),
            )

    return StrategyApi


def export_promotion_policy(cls):
    """Assign to ``PromotionPolicyApi`` in the module you build. What each method returns is
    checked against the WIT types (a wrong type is reported as the call's error, not a trap)."""
    exports = _exports("promotion-policy", "PromotionPolicyApi")
    import typing

    from wit_world.exports import PromotionPolicyApi as Api

    hints = {name: typing.get_type_hints(getattr(Api, name))["return"]
             for name in ("describe_task", "on_phase_end", "on_task_end")}

    def call(name, argument):
        try:
            value = getattr(cls(), name)(argument)
        except Exception as error:  # noqa: BLE001
            raise Err(_failure(error))
        found = _shape.problem(value, hints[name], f"{cls.__name__}.{name}()")
        if found:
            raise Err(found + " (build records with sophon.hcc.task_descriptor, knowledge_unit "
                              "and wisdom_entry)")
        return value

    class PromotionPolicyApi(exports.PromotionPolicyApi):
        def describe_task(self, task_info):
            return call("describe_task", task_info)

        def on_phase_end(self, trace):
            return call("on_phase_end", trace)

        def on_task_end(self, trace):
            return call("on_task_end", trace)

    return PromotionPolicyApi


def _exports(world: str, name: str):
    """The binding's ``exports`` module, with a clear error where it lacks ``name``: the module
    exports one world while plugin.toml names another."""
    from wit_world import exports

    if not hasattr(exports, name):
        worlds = {"StrategyApi": "strategy", "PromotionPolicyApi": "promotion-policy"}
        declared = next((w for n, w in worlds.items() if hasattr(exports, n)), "another world")
        raise RuntimeError(
            f"app.py exports a {world} ({name}), but plugin.toml says world = \"{declared}\": "
            f"set world = \"{world}\" in plugin.toml, or make app.py export a {declared}"
        )
    return exports
