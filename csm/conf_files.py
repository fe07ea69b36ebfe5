"""Where the files shipped in ``conf/`` are: the checkout's ``conf/``, or once installed
``<prefix>/share/etc`` (as CAST's ``/opt/ibm/csm/share/etc``; setup.py puts them there)."""

import os
import sysconfig

_CHECKOUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")


def conf_dir():
    """The directory of the default configs, the RAS types, sample prologs and units."""
    if os.path.isfile(os.path.join(_CHECKOUT, "csm_master.cfg")):
        return _CHECKOUT
    return os.path.join(sysconfig.get_path("data"), "share", "etc")


def conf_file(*parts):
    return os.path.join(conf_dir(), *parts)
