"""The daemon configuration: CAST's JSON files as attrs models, and their loaders.

``load_daemon_config`` reads ``csm_<role>.cfg`` (``daemon.py``, models in ``models.py``);
``load_acl`` reads ``csm_api.acl`` (``acl.py``); ``load_api_timeouts`` reads ``csm_api.cfg``
(``timeouts.py``). A bad file raises ``ConfigError``, whose one-line message names the file
and the key path. Values may be strings or numbers (``15`` and ``"15"`` are the same, as in
CAST); keys starting with ``#`` are comments; unknown keys are warned about.

Extensions beyond CAST (all optional): ``csm.node_name``, ``csm.db.port``,
``csm.net.max_message_size``, ``csm.net.failback_after``,
``csm.net.metrics_listen``, ``csm.manhole`` and ``csm.ras.rest``.
"""

from csm.config.acl import ApiAcl, load_acl
from csm.config.daemon import ROLES, load_daemon_config, report_unused
from csm.config.errors import ConfigError
from csm.config.models import (BDSConfig, Bucket, DaemonConfig, DBConfig, Endpoint, InventoryConfig,
                               LocalListen, LogConfig, ManholeConfig, NetConfig, RasActionConfig,
                               UFMConfig)
from csm.config.timeouts import ApiTimeouts, load_api_timeouts

__all__ = ["ApiAcl", "ApiTimeouts", "BDSConfig", "Bucket", "ConfigError", "DaemonConfig", "DBConfig",
           "Endpoint", "InventoryConfig", "LocalListen", "LogConfig", "ManholeConfig", "NetConfig",
           "RasActionConfig", "ROLES", "UFMConfig", "load_acl", "load_api_timeouts",
           "load_daemon_config", "report_unused"]
