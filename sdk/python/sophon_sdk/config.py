"""A plugin's JSON config (``[run.strategies.<name>]``, ``--plugin-config``): unknown keys are
errors that name the key, so a typo never falls back to a default silently."""


def parse(settings: dict, defaults: dict) -> dict:
    """``defaults`` updated with ``settings``; a key not in ``defaults`` or a value of another
    type raises ``ValueError`` naming it."""
    if not isinstance(settings, dict):
        raise ValueError(f"the config must be a JSON object, got {type(settings).__name__}")
    merged = dict(defaults)
    for key, value in settings.items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise ValueError(f"unknown config key `{key}` (known keys: {known})")
        default = defaults[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, int) and not isinstance(default, bool) and number:
            # An integer setting takes a whole number only (1500.0 is 1500; 1500.5 is refused).
            if float(value).is_integer():
                value = int(value)
        fits = (
            default is None
            or (isinstance(value, type(default)) and isinstance(value, bool) == isinstance(default, bool))
            or (isinstance(default, float) and number)
        )
        if not fits:
            raise ValueError(
                f"config key `{key}` must be {json_type(default)}, got {json_type(value)}"
            )
        merged[key] = value
    return merged


def json_type(value) -> str:
    return {bool: "a boolean", int: "a whole number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)
