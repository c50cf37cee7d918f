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

from . import artifacts, config, hcc, jobs, llm, run, task  # noqa: F401
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
    from wit_world import exports
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
    """Assign to ``PromotionPolicyApi`` in the module you build."""
    from wit_world import exports

    class PromotionPolicyApi(exports.PromotionPolicyApi):
        def describe_task(self, task_info):
            try:
                return cls().describe_task(task_info)
            except Exception as error:  # noqa: BLE001
                raise Err(_failure(error))

        def on_phase_end(self, trace):
            try:
                return cls().on_phase_end(trace)
            except Exception as error:  # noqa: BLE001
                raise Err(_failure(error))

        def on_task_end(self, trace):
            try:
                return cls().on_task_end(trace)
            except Exception as error:  # noqa: BLE001
                raise Err(_failure(error))

    return PromotionPolicyApi
