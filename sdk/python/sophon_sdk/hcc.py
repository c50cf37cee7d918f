"""The Hierarchical Cognitive Cache (``sophon:host/hcc``): record what happened, build prompt
context within a token budget, search knowledge and wisdom."""

from ._host import call, wit_module


_BINDINGS = wit_module("hcc")


def _wit():
    return _BINDINGS


def record(kind: str, content: str, *, node: str | None = None, metric: float | None = None) -> int:
    """Append an event; ``kind`` is task, plan, code, execution, review, submission, insight or
    any other word; ``node`` and ``metric`` by keyword. Returns its id."""
    w = _wit()
    known = {
        "task": w.EventKind_Task, "plan": w.EventKind_Plan, "code": w.EventKind_Code,
        "execution": w.EventKind_Execution, "review": w.EventKind_Review,
        "submission": w.EventKind_Submission, "insight": w.EventKind_Insight,
    }
    event_kind = known[kind]() if kind in known else w.EventKind_Other(kind)
    event = w.Event(kind=event_kind, node=node, content=content, metric=metric)
    return call(w.record_event, event)


def begin_phase(plan: str) -> int:
    """Start a phase with its research plan (ending, and promoting, the current one)."""
    return call(_wit().begin_phase, plan)


def end_phase():
    """End the current phase; the knowledge unit the promotion policy distilled, if any."""
    return call(_wit().end_phase)


def context(budget_tokens: int, query: str | None = None):
    """The prompt context by the HCC rules within ``budget_tokens`` (``.text``, ``.tokens``)."""
    w = _wit()
    return call(w.context, w.ContextRequest(budget_tokens=budget_tokens, query=query, model=None))


def search(layer: str, query: str, k: int = 5):
    """The ``k`` entries of ``layer`` (experience, knowledge, wisdom) most similar to ``query``."""
    w = _wit()
    return call(w.search, getattr(w.Layer, layer.upper()), query, k)


def knowledge():
    return call(_wit().knowledge)


def events(phase: int | None = None, after: int = 0, limit: int = 100):
    return call(_wit().events, phase, after, limit)


def stats():
    return call(_wit().stats)


def knowledge_unit(phase: int, summary: str, *, insights=(), failure_causes=(),
                   best_approach: str | None = None, best_metric: float | None = None):
    """A knowledge unit, for a promotion policy's ``on_phase_end``."""
    return _wit().KnowledgeUnit(
        phase=phase, summary=summary, verdicts=[], failure_causes=list(failure_causes),
        insights=list(insights), best_approach=best_approach, best_metric=best_metric,
    )


def task_descriptor(modality: str, task_type: str, metric: str, data_size: str, summary: str):
    """A task descriptor, for a promotion policy's ``describe_task``."""
    return _wit().TaskDescriptor(
        modality=modality, task_type=task_type, metric=metric, data_size=data_size, summary=summary,
    )


def wisdom_entry(category: str, content: str, applies_when: str):
    """A wisdom entry, for a promotion policy's ``on_task_end``."""
    return _wit().WisdomEntry(category=category, content=content, applies_when=applies_when)
