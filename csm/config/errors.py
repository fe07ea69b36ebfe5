"""``ConfigError``: one line naming the file, the line where known, and the key path."""


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line naming the file and key."""

    def __init__(self, path, key, message, line=None, column=None):
        self.path, self.key, self.line, self.message = path, key, line, message
        where = path if line is None else "%s:%d:%d" % (path, line, column or 0)
        text = "%s: %s: %s" % (where, key, message) if key else "%s: %s" % (where, message)
        super().__init__(text)


def default_warn(text):
    """Where the loaders' warnings go unless a caller collects them."""
    from twisted.logger import Logger
    Logger(namespace="csmd").warn("{text}", text=text)
