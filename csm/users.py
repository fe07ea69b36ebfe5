"""Local users by uid, as the API names its callers."""

import pwd


def user_name_of(uid):
    """The user name of ``uid``, or ``uid N`` for a uid with no entry."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "uid %d" % uid
