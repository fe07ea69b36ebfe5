"""``csm_api.cfg``: per-API timeouts in seconds."""

import os

import attrs

from csm.config.errors import default_warn
from csm.config.reader import Reader, read_json

DEFAULT_API_TIMEOUT = 30.0
MIN_API_TIMEOUT = 5.0


@attrs.frozen
class ApiTimeouts:
    """Per-API timeouts in seconds; 30 s for any API not listed."""

    values: dict = attrs.field(factory=dict)
    default: float = DEFAULT_API_TIMEOUT

    def timeout(self, api_name):
        return self.values.get(api_name.lower(), self.default)

    def as_dict(self):
        return {name: value for name, value in self.values.items() if value != self.default}


def load_api_timeouts(path, warn=None):
    """Read ``csm_api.cfg``: ``{"csm_<api>": seconds}``; values under 5 s keep the default."""
    warn = warn or default_warn
    if not path or not os.path.exists(path):
        warn("%s: API configuration not found: every API times out after %gs" % (path, DEFAULT_API_TIMEOUT))
        return ApiTimeouts()
    data = read_json(path)
    reader = Reader(path, warn)
    if not isinstance(data, dict):
        raise reader.error(None, "expected a JSON object")
    values = {}
    for key, raw in data.items():
        if "#" in key:
            continue
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            warn("%s: %s: %r is not a number of seconds; default kept" % (path, key, raw))
            continue
        if seconds < MIN_API_TIMEOUT:
            warn("%s: %s: %gs is under the %gs minimum; default kept" % (path, key, seconds, MIN_API_TIMEOUT))
            continue
        values[key.lower()] = seconds
    return ApiTimeouts(values)
