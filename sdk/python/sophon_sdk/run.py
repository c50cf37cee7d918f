"""The run this plugin is part of (``sophon:host/run``): budgets, nodes, the best submission,
logging."""

from ._host import call, wit_module

JOB_MARGIN_MS = 5_000


_TYPES = wit_module("types")
_BINDINGS = wit_module("run")


def _wit():
    return _BINDINGS


def info():
    """``.run_id``, ``.competition_id``, ``.seed`` (derive all randomness from it), ``.arm``."""
    return _wit().info()


def budget():
    return _wit().budget()


def should_stop() -> bool:
    """True once a budget is spent or the operator asked the run to stop."""
    return _wit().should_stop()


def job_time(limit_ms: int) -> int | None:
    """The wall time the next job may take: ``limit_ms`` cut to the run's time left less a
    margin; ``None`` when too little is left to start one."""
    left = budget().wall_ms_left
    if left is None:
        return limit_ms
    if left > JOB_MARGIN_MS + 5_000:
        return min(limit_ms, left - JOB_MARGIN_MS)
    return None


class Node:
    """A node report under construction (see :func:`node`)."""

    def __init__(self, id: str, operator: str):
        self.fields = dict(
            id=id, parent=None, operator=operator, worker=None, plan="", code=None,
            metric=None, buggy=False, valid_submission=False, summary="",
        )

    def _set(self, key, value) -> "Node":
        self.fields[key] = value
        return self

    def parent(self, parent: str) -> "Node":
        return self._set("parent", parent)

    def worker(self, worker: int) -> "Node":
        return self._set("worker", worker)

    def plan(self, plan: str) -> "Node":
        return self._set("plan", plan)

    def code(self, artifact_id: str) -> "Node":
        return self._set("code", artifact_id)

    def metric(self, metric: float) -> "Node":
        return self._set("metric", float(metric))

    def buggy(self) -> "Node":
        return self._set("buggy", True)

    def valid(self) -> "Node":
        return self._set("valid_submission", True)

    def summary(self, summary: str) -> "Node":
        return self._set("summary", summary)

    def build(self):
        return _wit().NodeReport(**self.fields)

    def report(self) -> None:
        """Report it (counts one step of the step budget)."""
        call(_wit().report_node, self.build())


def node(id: str, operator: str) -> Node:
    """``run.node("node-3", "improve").parent("node-1").metric(0.91).valid().summary(...).report()``"""
    return Node(id, operator)


def report_best(node_id: str, submission: str, metric: float) -> bool:
    """Claim artifact ``submission`` of ``node_id`` as the best; whether the host accepted it."""
    return call(_wit().report_best, node_id, submission, float(metric))


def best():
    """The submission the host holds as the run's best (``.node``, ``.submission``,
    ``.metric``), or ``None``. Since ``sophon:host@0.2.0``."""
    return _wit().best()


def log(level: str, message: str) -> None:
    """``level``: trace, debug, info, warn or error."""
    _wit().log(getattr(_TYPES.LogLevel, level.upper()), message)


def log_info(message: str) -> None:
    log("info", message)


def log_warn(message: str) -> None:
    log("warn", message)
