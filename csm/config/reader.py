"""Reading CAST's JSON config files: values as strings or numbers, key paths in every error.

``Reader.model`` reads one section into the fields of an attrs model (``csm.config.models``),
each key's type and default taken from the model.
"""

import json
import os
import re

import attrs

from csm.config.errors import ConfigError
from csm.config.models import Endpoint


def read_json(path):
    """The file's JSON, or ``ConfigError`` naming the file (and line for a syntax error)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(path, None, "cannot read: %s" % (exc.strerror or exc)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, "not UTF-8 text (byte %d)" % exc.start) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, None, "invalid JSON: %s" % exc.msg, exc.lineno, exc.colno) from None


def duration(text):
    """``HH:MM:SS`` (hours may exceed 24) -> seconds."""
    match = re.fullmatch(r"\s*(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)\s*", str(text))
    if not match:
        raise ValueError("expected HH:MM:SS")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _boolean(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _integer(value):
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    return int(str(value).strip()) if isinstance(value, str) else int(value)


def _octal(value):
    text = str(value).strip()
    return int(text, 8) if text else 0


def _string(value):
    if isinstance(value, (dict, list)):
        raise ValueError("expected a string")
    return "" if value is None else str(value)


def _object(value):
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise ValueError("expected an object")
    return dict(value)


KINDS = {str: _string, int: _integer, bool: _boolean, float: float, "octal": _octal,
         "duration": duration, "object": _object}
KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number",
              "octal": "octal permissions", "duration": "a duration HH:MM:SS", "object": "an object"}


def _default(field):
    if isinstance(field.default, attrs.Factory):
        return field.default.factory()
    return None if field.default is attrs.NOTHING else field.default


class Reader:
    """Reads one file's sections, naming key paths in errors and warnings."""

    def __init__(self, path, warn):
        self.path = path
        self.warn = warn
        self.base = os.path.dirname(os.path.abspath(path))
        #: key paths set in the file whose model field is marked ``unused``
        self.unused = []

    def error(self, key, message):
        return ConfigError(self.path, key, message)

    def section(self, data, key):
        value = data.get(key.rsplit(".", 1)[-1]) if isinstance(data, dict) else None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(key, "expected an object")
        return value

    def value(self, data, prefix, name, kind, default):
        if name not in data or data[name] is None:
            return default
        try:
            return KINDS[kind](data[name])
        except (TypeError, ValueError):
            raise self.error("%s.%s" % (prefix, name), "expected %s, got %s"
                             % (KIND_NAMES[kind], json.dumps(data[name]))) from None

    def model(self, data, prefix, cls):
        """The keyword arguments of ``cls`` read from section ``data`` (derived fields left out)."""
        fields = attrs.fields(cls)
        known = {f.name for f in fields if not f.metadata.get("derived")}
        self.unknown(data, prefix, known | set(getattr(cls, "other_keys", ())))
        values = {}
        for field in fields:
            meta = field.metadata
            if meta.get("derived"):
                continue
            key = "%s.%s" % (prefix, field.name)
            if meta.get("unused") and field.name in data:
                self.unused.append(key)
            if field.type is Endpoint:
                values[field.name] = self.endpoint(data, prefix, field.name)
            elif attrs.has(field.type):
                values[field.name] = field.type(**self.model(self.section(data, key), key, field.type))
            else:
                values[field.name] = self.setting(data, prefix, field, meta)
        return values

    def setting(self, data, prefix, field, meta):
        default = _default(field)
        value = self.value(data, prefix, field.name, meta.get("kind", field.type), default)
        if meta.get("empty_default") and value in (None, ""):
            return default
        if meta.get("none_off") and str(value).strip().lower() == "none":
            return ""
        return self.path_value(value) if meta.get("path") else value

    def unknown(self, data, prefix, known):
        for key in data:
            if key.startswith("#") or key in known:
                continue
            self.warn("%s: unknown key %s.%s ignored" % (self.path, prefix, key))

    def path_value(self, value):
        if not value or value.lower() == "none" or os.path.isabs(value):
            return value
        return os.path.join(self.base, value)

    def endpoint(self, data, prefix, name):
        section = self.section(data, "%s.%s" % (prefix, name))
        if not section:
            return None
        key = "%s.%s" % (prefix, name)
        self.unknown(section, key, {"host", "port"})
        host = self.value(section, key, "host", str, "").strip()
        if not host or host.upper() == "NONE":
            return None
        port = self.value(section, key, "port", int, None)
        if port is None or not 0 <= port <= 65535:
            raise self.error(key + ".port", "expected a port number 0-65535")
        return Endpoint(host, port)
