#!/bin/sh
# Make sure pamtester is available (the PAM login tests drive the real PAM stack with it).
# Installs Debian's pamtester package when run as root; otherwise the tests that need it
# are skipped with the reason, and this says what to install.
command -v pamtester >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "pamtester not found: installing Debian's pamtester package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pamtester >/dev/null 2>&1 ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q pamtester >/dev/null; }
    command -v pamtester >/dev/null 2>&1 && exit 0
fi
echo "the PAM login tests need pamtester (Debian package 'pamtester'); they are skipped without it" >&2
exit 0
