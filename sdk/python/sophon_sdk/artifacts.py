"""The run's artifact store (``sophon:host/artifacts``): immutable files passed by id."""

from ._host import HostError, call, wit_module


_BINDINGS = wit_module("artifacts")


def _wit():
    return _BINDINGS


def create(name: str, contents: bytes | str):
    """Store ``contents`` as a new artifact named ``name`` (a plain file name); its record
    (``.id``, ``.name``, ``.size``, ``.sha256``)."""
    data = contents.encode() if isinstance(contents, str) else bytes(contents)
    return call(_wit().create, name, data)


def stat(artifact_id: str):
    return call(_wit().stat, artifact_id)


def read_all(artifact_id: str, limit: int) -> bytes:
    """The whole artifact, refusing anything over ``limit`` bytes."""
    meta = stat(artifact_id)
    if meta.size > limit:
        raise HostError("too-large", f"artifact {artifact_id} ({meta.name}) is {meta.size} bytes, over the {limit}-byte limit")
    out = bytearray()
    while True:
        chunk = call(_wit().read, artifact_id, len(out), 1 << 20)
        if not chunk:
            return bytes(out)
        out.extend(chunk)
