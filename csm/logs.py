"""Logging by subcomponent (csmdb, csmnet, csmd, csmras, csmapi, csmenv) on twisted.logger.

Levels are checked before an event is made, so a filtered debug line costs one
dictionary look-up, and they apply to every observer (console and file alike).
``set_level`` changes them at run time (``csm_ctrl_cmd --log.csmnet debug``).
"""

from twisted.logger import Logger, LogLevel

SUBCOMPONENTS = ("csmdb", "csmnet", "csmd", "csmras", "csmapi", "csmenv")

#: CAST severity names, in order, mapped to twisted levels; None silences.
_SEVERITIES = {
    "trace": LogLevel.debug,
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
    "always": LogLevel.critical,
    "off": None,
    "disable": None,
}
_ORDER = {LogLevel.debug: 0, LogLevel.info: 1, LogLevel.warn: 2, LogLevel.error: 3,
          LogLevel.critical: 4}
_SILENT = 99

_thresholds = {name: _ORDER[LogLevel.info] for name in SUBCOMPONENTS}
_names = {name: "info" for name in SUBCOMPONENTS}


def set_level(subcomponent, severity):
    """Set one subcomponent's level by CAST severity name; ``ValueError`` if unknown."""
    if subcomponent not in _thresholds:
        raise ValueError("unknown subcomponent %r (one of %s)" % (subcomponent, ", ".join(SUBCOMPONENTS)))
    severity = severity.lower()
    if severity not in _SEVERITIES:
        raise ValueError("unknown severity %r (one of %s)" % (severity, ", ".join(_SEVERITIES)))
    level = _SEVERITIES[severity]
    _thresholds[subcomponent] = _SILENT if level is None else _ORDER[level]
    _names[subcomponent] = severity


def levels():
    """The current level name of every subcomponent."""
    return dict(_names)


class SubLogger:
    """A ``twisted.logger.Logger`` for one subcomponent that honours its level."""

    def __init__(self, subcomponent):
        self.subcomponent = subcomponent
        self._log = Logger(namespace=subcomponent)

    def enabled(self, level):
        return _ORDER[level] >= _thresholds[self.subcomponent]

    def emit(self, level, fmt, **kw):
        if _ORDER[level] >= _thresholds[self.subcomponent]:
            self._log.emit(level, fmt, **kw)

    def debug(self, fmt, **kw):
        self.emit(LogLevel.debug, fmt, **kw)

    def info(self, fmt, **kw):
        self.emit(LogLevel.info, fmt, **kw)

    def warn(self, fmt, **kw):
        self.emit(LogLevel.warn, fmt, **kw)

    def error(self, fmt, **kw):
        self.emit(LogLevel.error, fmt, **kw)

    def critical(self, fmt, **kw):
        self.emit(LogLevel.critical, fmt, **kw)

    def failure(self, fmt, failure=None, level=LogLevel.critical, **kw):
        if _ORDER[level] >= _thresholds[self.subcomponent]:
            self._log.failure(fmt, failure, level, **kw)


def logger(subcomponent):
    return SubLogger(subcomponent)
