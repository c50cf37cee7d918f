"""The `echo` fixture (tests/plugins/echo) in Python, on the raw bindings (no SDK), so the
benchmark compares languages, not libraries: `noop`, `host-calls:N` (N calls of
run.should-stop) and `echo:PAYLOAD`."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import strategy_api
from wit_world.imports import run


class StrategyApi(exports.StrategyApi):
    def run(self, config: str) -> strategy_api.Outcome:
        if config == "noop":
            return strategy_api.Outcome(best_node=None, nodes=0, summary="")
        if config.startswith("host-calls:"):
            stops = sum(1 for _ in range(int(config[len("host-calls:"):])) if run.should_stop())
            return strategy_api.Outcome(best_node=None, nodes=stops, summary="")
        if config.startswith("echo:"):
            return strategy_api.Outcome(best_node=None, nodes=0, summary=config[len("echo:"):])
        raise Err(f"unknown command {config!r}")
