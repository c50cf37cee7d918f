"""The task being solved (``sophon:host/task``), answered by the run's task adapter."""

from ._host import call, wit_module


_TYPES = wit_module("types")
_BINDINGS = wit_module("task")


def _wit():
    return _BINDINGS


def describe():
    """``.title``, ``.description``, ``.metric`` (``.name``, ``.direction``), ``.submission_format``,
    ``.data_preview``, ``.public_files``, ``.sample_submission``."""
    return call(_wit().describe)


def validate(submission: str):
    """Check a submission (an artifact id) as the grader would: ``.valid``, ``.message``."""
    return call(_wit().validate, submission)


def maximize(info) -> bool:
    """True when the task's metric is better higher."""
    return info.metric.direction == _TYPES.Direction.MAXIMIZE
