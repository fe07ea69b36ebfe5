"""The four roles; ``daemon_class(role)`` is the one place a role is chosen."""


def daemon_class(role):
    if role == "master":
        from csm.roles.master import MasterDaemon as cls
    elif role == "aggregator":
        from csm.roles.aggregator import AggregatorDaemon as cls
    elif role == "utility":
        from csm.roles.utility import UtilityDaemon as cls
    elif role == "compute":
        from csm.roles.compute import ComputeDaemon as cls
    else:
        raise ValueError("unknown role %r" % (role,))
    return cls
