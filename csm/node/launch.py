"""Start a long-lived program as a user inside a cgroup, detached from the daemon.

``python -m csm.node.launch --user NAME --cgroup DIR -- PROGRAM ARGS..`` runs as
root: it starts a new session, joins ``DIR`` (its ``cgroup.procs``), takes the
user's uid, gid and groups, moves to the user's home, prints ``ready`` and
execs the program with stdin and output on /dev/null. Anything that fails
before that is one line on stderr and exit status 126 (127: no such program),
so the daemon that started it can answer with the reason.
"""

import argparse
import os
import pwd
import sys


def _fail(status, text):
    sys.stderr.write(text + "\n")
    sys.exit(status)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="csm-launch")
    parser.add_argument("--user", required=True)
    parser.add_argument("--cgroup", default="")
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        _fail(126, "no program to run")
    try:
        user = pwd.getpwnam(args.user)
    except KeyError:
        _fail(126, "no such user %r" % args.user)
    os.setsid()
    try:
        if args.cgroup:
            with open(os.path.join(args.cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        os.initgroups(user.pw_name, user.pw_gid)
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    except OSError as exc:
        _fail(126, "cannot become %s in %s: %s" % (user.pw_name, args.cgroup or "this cgroup", exc.strerror))
    home = user.pw_dir if os.path.isdir(user.pw_dir) and os.access(user.pw_dir, os.X_OK) else "/"
    os.chdir(home)
    env = dict(os.environ, HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    env.pop("PYTHONPATH", None)  # ours, not the program's
    if not os.path.isfile(program[0]) or not os.access(program[0], os.X_OK):
        _fail(127, "%s is not a program %s may run" % (program[0], user.pw_name))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        os.execve(program[0], program, env)
    except OSError:
        os._exit(127)


if __name__ == "__main__":
    main()
