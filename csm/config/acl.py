"""``csm_api.acl``: who is privileged, and which APIs are private or public."""

import grp
import os
import pwd

import attrs

from csm import users
from csm.config.errors import default_warn
from csm.config.reader import Reader, read_json


@attrs.frozen
class ApiAcl:
    """Who is privileged, and which APIs are private or public (the rest are privileged)."""

    privileged_users: frozenset = frozenset({0})
    privileged_groups: frozenset = frozenset({0})
    private: frozenset = frozenset()
    public: frozenset = frozenset()
    everyone_privileged: bool = False
    #: where users' groups are looked up (cached: NSS may block on LDAP, and this is the reactor thread)
    passwd: users.PasswdCache = attrs.field(default=users.PASSWD, eq=False, repr=False)

    @classmethod
    def allow_all(cls):
        return cls(everyone_privileged=True)

    @classmethod
    def default(cls):
        return cls(private=frozenset(DEFAULT_PRIVATE), public=frozenset(DEFAULT_PUBLIC))

    def access_class(self, api_name):
        name = api_name.lower()
        if name in self.public:
            return "public"
        if name in self.private:
            return "private"
        return "privileged"

    def is_privileged(self, uid, gid):
        if self.everyone_privileged or uid == 0 or gid == 0:
            return True
        if uid in self.privileged_users or gid in self.privileged_groups:
            return True
        if not self.privileged_groups:
            return False
        try:
            groups = self.passwd.groups_of(uid, gid)
        except KeyError:
            return False
        return any(g in self.privileged_groups for g in groups)


DEFAULT_PRIVATE = ("csm_allocation_query_details", "csm_allocation_delete", "csm_allocation_update_state",
                   "csm_bb_cmd", "csm_jsrun_cmd", "csm_allocation_step_query_details")
DEFAULT_PUBLIC = ("csm_allocation_step_cgroup_create", "csm_allocation_step_cgroup_delete",
                  "csm_allocation_query", "csm_allocation_query_active_all",
                  "csm_allocation_resources_query", "csm_allocation_step_begin",
                  "csm_allocation_step_end", "csm_allocation_step_query",
                  "csm_allocation_step_query_active_all", "csm_diag_run_query",
                  "csm_node_attributes_query", "csm_node_attributes_query_history",
                  "csm_node_resources_query", "csm_node_resources_query_all")


def _ids(reader, data, key, lookup):
    raw = data.get(key, [])
    names = [raw] if isinstance(raw, (str, int)) else raw
    if not isinstance(names, list):
        raise reader.error(key, "expected a name or a list of names")
    ids = set()
    for name in names:
        if isinstance(name, int) or str(name).isdigit():
            ids.add(int(name))
            continue
        try:
            ids.add(lookup(str(name)))
        except KeyError:
            reader.warn("%s: %s: unknown name %r ignored" % (reader.path, key, name))
    return frozenset(ids | {0})


def _api_names(reader, data, key):
    raw = data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise reader.error(key, "expected a list of API names")
    return frozenset(name.strip().lower() for name in raw)


def load_acl(path, warn=None):
    """Read ``csm_api.acl``; a missing file lets every caller in (CAST's behaviour), with a warning."""
    warn = warn or default_warn
    if not path or not os.path.exists(path):
        warn("%s: ACL file not found: every local caller is treated as privileged" % path)
        return ApiAcl.allow_all()
    reader = Reader(path, warn)
    data = read_json(path)
    if not isinstance(data, dict):
        raise reader.error(None, "expected a JSON object")
    reader.unknown(data, "acl", {"privileged_user_id", "privileged_group_id", "private", "public"})
    return ApiAcl(
        privileged_users=_ids(reader, data, "privileged_user_id", lambda n: pwd.getpwnam(n).pw_uid),
        privileged_groups=_ids(reader, data, "privileged_group_id", lambda n: grp.getgrnam(n).gr_gid),
        private=_api_names(reader, data, "private"),
        public=_api_names(reader, data, "public"),
    )
