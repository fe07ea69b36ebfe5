"""``csm-pam-login``: the command ``pam_exec`` runs for sshd on a compute (CAST's libcsmpam).

In the ``account`` phase it asks the local daemon (``csm_cgroup_login``) whether
the user owns an allocation on this node; a user who owns none is refused
unless named in the exempt list (CAST's ``/etc/pam.d/csm/whitelist``, one user
name a line). In the ``open_session`` phase it moves the session (the process
that runs PAM, this command's parent) into the allocation's cgroup; a session
is never refused there, as CAST's module. root is always let in and left where
it is. The reason for a refusal is one line on stderr (sshd logs it).
"""

import argparse
import os
import sys

DEFAULT_EXEMPT = "/etc/pam.d/csm/whitelist"


def exempt_users(path):
    try:
        with open(path) as f:
            return {line.strip() for line in f if line.strip() and not line.startswith("#")}
    except OSError:
        return set()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="csm-pam-login", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", help="the compute daemon's local socket (default: CSM_SOCKET or /run/csmd.sock)")
    parser.add_argument("--exempt", default=DEFAULT_EXEMPT, help="users always let in (default %(default)s)")
    args = parser.parse_args(argv)
    user = os.environ.get("PAM_USER", "")
    phase = os.environ.get("PAM_TYPE", "account")
    if not user:
        sys.stderr.write("csm-pam-login: no PAM_USER (run it from pam_exec)\n")
        return 1
    if user == "root":
        return 0
    from csm.client import Client
    from csm.errors import CSMError
    session = phase == "open_session"
    try:
        with Client(args.socket, timeout=10) as client:
            client.call("cgroup_login", {"user_name": user, "pid": os.getppid(), "migrate_pid": session})
        return 0
    except CSMError as exc:
        reason = exc.errmsg
    if session or user in exempt_users(args.exempt):
        return 0
    sys.stderr.write("csm-pam-login: %s refused: %s\n" % (user, reason))
    return 1


if __name__ == "__main__":
    sys.exit(main())
