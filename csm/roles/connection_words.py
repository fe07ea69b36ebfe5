"""CONNECTION_CTRL payloads between a compute and its aggregators (CAST's spellings).

Their own module: the compute daemon needs the words without importing the
aggregator (which brings the Prometheus exporter and the web server with it).
"""

FAILOVER = "FAIL0VER"
RESET = "R3S3T"
RESTART = "R3ST4RT"
#: beyond CAST: the aggregator asks a compute to make this link its primary
PROMOTE = "PR0M0TE"
