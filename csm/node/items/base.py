"""What the environmental items share: a logger that says each problem once."""

from twisted.logger import Logger


class Reporter:
    """Logs each distinct problem (by key) a single time over the object's life."""

    log = Logger(namespace="csmd")

    def __init__(self):
        self._said = set()

    def once(self, key, message, **fields):
        if key not in self._said:
            self._said.add(key)
            self.log.info(message, **fields)


class Item(Reporter):
    """An environmental item: ``collect() -> [{"type": ..., "data": {...}}]``.

    ``collect`` is blocking (file reads, NVML): the bucket service runs it on a thread.
    A sensor that is missing gives no record; that is logged once per item, so a bucket
    firing every few seconds does not repeat it.
    """

    def collect(self):
        raise NotImplementedError


def record(kind, data):
    return {"type": kind, "data": data}
