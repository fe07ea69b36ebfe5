"""CSM: Cluster System Management daemons on Twisted."""

#: The CSM version this implementation speaks (CAST 1.8.5 interfaces).
__version__ = "1.8.5"
