"""Language-model calls through the host (``sophon:host/llm``). The host owns providers,
keys, retries, caching and budgets."""

from ._host import Err, call, from_wit, wit_module


_BINDINGS = wit_module("llm")


def _wit():
    return _BINDINGS


def message(role: str, content: str):
    """A message; ``role`` is ``system``, ``user``, ``assistant`` or ``tool``."""
    w = _wit()
    return w.Message(
        role=getattr(w.Role, role.upper()),
        content=content,
        reasoning=None,
        tool_calls=[],
        tool_call_id=None,
    )


def request(
    prompt: str | None = None,
    *,
    system: str | None = None,
    messages: list | None = None,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    json_schema: tuple[str, str] | None = None,
    prefill: str | None = None,
    purpose: str | None = None,
):
    """A chat request: ``messages``, or a ``system`` then a user ``prompt``; every option at the
    host's default unless given. ``json_schema`` is ``(name, schema_json)``."""
    w = _wit()
    history = list(messages or [])
    if system is not None:
        history.append(message("system", system))
    if prompt is not None:
        history.append(message("user", prompt))
    if json_schema is not None:
        name, schema = json_schema
        response_format = w.ResponseFormat_JsonSchema(w.JsonSchema(name=name, schema=schema, strict=True))
    else:
        response_format = w.ResponseFormat_Text()
    return w.ChatRequest(
        messages=history,
        model=model,
        temperature=temperature,
        top_p=None,
        max_tokens=max_tokens,
        stop=[],
        seed=seed,
        response_format=response_format,
        tools=[],
        tool_choice=None,
        prefill=prefill,
        cache=w.CachePolicy.DEFAULT,
        purpose=purpose,
    )


def chat(prompt_or_request, **options):
    """Ask and wait: ``chat("...", system=..., max_tokens=...)`` or ``chat(request(...))``.
    Returns the completion (``.text``, ``.usage``, ``.finish``)."""
    req = prompt_or_request if not isinstance(prompt_or_request, str) else request(prompt_or_request, **options)
    return call(_wit().chat, req)


def start_chat(req):
    """Start a call without waiting; ``wait(pending)`` takes its completion."""
    return call(_wit().start_chat, req)


def wait(pending):
    """Block until a call started with ``start_chat`` is answered; its completion."""
    while True:
        outcome = pending.get()
        if outcome is not None:
            if isinstance(outcome, Err):
                raise from_wit(outcome.value)
            return getattr(outcome, "value", outcome)
        pending.subscribe().block()


def count_tokens(text: str, model: str | None = None) -> int:
    return call(_wit().count_tokens, text, model)


def embed(inputs: list[str], model: str | None = None) -> list[list[float]]:
    return call(_wit().embed, inputs, model)


def models():
    """The models this plugin may use; the first is its default."""
    return _wit().models()


def budget():
    return _wit().budget()
