"""The daemon's log outputs from the ``csm.log`` block: levels, file log with rotation."""

import json
import os
import time

from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.logfile import LogFile

from csm import logs

_SEVERITY = {"debug": "debug", "info": "info", "warn": "warning", "error": "error",
             "critical": "critical"}


def apply_levels(log_config):
    """Set each subcomponent's level from the config."""
    for sub in logs.SUBCOMPONENTS:
        level = log_config.levels.get(sub, log_config.default_sev)
        try:
            logs.set_level(sub, level)
        except ValueError:
            logs.set_level(sub, "info")


class CastFormatObserver:
    """Writes events in CAST's line format (``%TimeStamp% %SubComponent%::%Severity% | %Message%``)."""

    def __init__(self, stream, fmt):
        self.stream = stream
        self.fmt = fmt

    def __call__(self, event):
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text = "%s\n%s" % (text, failure.getTraceback())
        stamp = event.get("log_time") or time.time()
        level = event.get("log_level")
        line = (self.fmt.replace("%TimeStamp%", time.strftime("%Y-%m-%d %H:%M:%S",
                                                               time.localtime(stamp))
                                 + ".%06d" % int((stamp % 1) * 1e6))
                .replace("%SubComponent%", event.get("log_namespace", "csmd").split(".")[0])
                .replace("%Severity%", _SEVERITY.get(level.name if level else "info", "info"))
                .replace("%Message%", text))
        self.stream.write(line + "\n")
        self.stream.flush()


def install_file_log(log_config, publisher=globalLogPublisher):
    """Add the file log (rotated at ``rotationSize``, 5 old files kept); returns the observer."""
    path = log_config.fileLog
    if not path or path.lower() == "none":
        return None
    rotate = log_config.rotationSize if log_config.rotationSize and log_config.rotationSize > 0 else None
    if not log_config.fileAppend:
        open(path, "w").close()  # CAST truncates the file log at start unless fileAppend
    logfile = LogFile.fromFullPath(path, rotateLength=rotate, maxRotatedFiles=5)
    observer = CastFormatObserver(logfile, log_config.format)
    publisher.addObserver(observer)
    return observer


#: json.dumps(record, default=str, sort_keys=True), without making an encoder per record
#: (a RAS flood writes one record an event: 3.5 -> 2.6 us each)
_LINE = json.JSONEncoder(default=str, sort_keys=True)


class JsonLines:
    """Append-only JSON lines (RAS event, transaction and allocation metrics logs), rotated by size.

    Records are buffered and written together at the end of the reactor turn that made
    them (``clock.callLater(0)``), so a burst of RAS events costs one write, not one per
    event, on the reactor thread; ``close()`` writes what is left. ``rotate_bytes`` <= 0
    never rotates; rotated files are ``<path>.1``, ``.2``... (Twisted's ``LogFile``). The
    file is opened on the first write.
    """

    def __init__(self, path, rotate_bytes=-1, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.path = path
        self.rotate_bytes = rotate_bytes if rotate_bytes and rotate_bytes > 0 else None
        self.clock = clock
        self._file = None
        self._pending = []
        self._flush_call = None

    def write(self, record):
        self._pending.append(_LINE.encode(record) + "\n")
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self.flush)

    def flush(self):
        """Write the buffered records now (in pieces that end where the file is to rotate)."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        lines, self._pending = self._pending, []
        if not lines:
            return
        if self._file is None:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            self._file = LogFile(os.path.basename(self.path), directory, rotateLength=self.rotate_bytes)
        chunk, size = [], self._file.size
        for line in lines:
            chunk.append(line)
            size += len(line)
            if self.rotate_bytes and size >= self.rotate_bytes:  # the next write rotates first
                self._file.write("".join(chunk))
                chunk, size = [], 0
        if chunk:
            self._file.write("".join(chunk))

    def close(self):
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
