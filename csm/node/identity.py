"""Who the node is: model, serial, kernel and OS image."""

import os

from csm.node.sysfs import meaningful

_DMI = "sys/class/dmi/id/"
_DEVICE_TREE = "proc/device-tree/"


def machine(tree):
    """``(machine_model, serial_number)``: the device tree on ppc64le, else DMI."""
    model = (meaningful(tree.read(_DEVICE_TREE + "model"))
             or meaningful(tree.read(_DMI + "product_name")))
    serial = (meaningful(tree.read(_DEVICE_TREE + "system-id"))
              or meaningful(tree.read(_DMI + "product_serial")))
    return model, serial


def kernel(tree):
    """``(release, version)``: ``os.uname`` on the live root, else ``/proc/sys/kernel``."""
    if tree.is_live:
        uname = os.uname()
        return uname.release, uname.version
    return tree.read("proc/sys/kernel/osrelease"), tree.read("proc/sys/kernel/version")


def os_image(tree):
    """``(os_image_name, os_image_uuid)``: xCAT's image when provisioned by xCAT,
    else the ``PRETTY_NAME`` of ``/etc/os-release`` and no uuid."""
    xcat = tree.fields("opt/xcat/xcatinfo", "=")
    release = tree.fields("etc/os-release", "=")
    name = (xcat.get("IMAGENAME") or release.get("PRETTY_NAME")
            or " ".join(filter(None, (release.get("NAME"), release.get("VERSION_ID")))))
    return name or None, xcat.get("IMAGEUUID") or None
