#!/bin/sh
# Make sure PostgreSQL's server binaries (initdb, pg_ctl, postgres) are available.
# Installs Debian's postgresql package when run as root; otherwise says what to install.
found() {
    command -v initdb >/dev/null 2>&1 && return 0
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
found && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server not found: installing Debian's postgresql package"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    found && exit 0
fi
echo "csm needs the PostgreSQL server binaries (initdb, pg_ctl): install the 'postgresql' package" >&2
exit 1
