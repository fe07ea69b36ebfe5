#!/bin/sh
# Make sure a Debian package that make demo or make test needs is installed:
#   sh tools/ensure-package.sh PACKAGE required|optional 'CHECK'
# CHECK is a shell command that succeeds once the package is there. As root, the package is
# installed with apt-get; otherwise this says what to install. A missing required package
# fails; a missing optional one only says so (the tests that need it skip, naming it).
package=$1 need=$2 check=$3
present() { sh -c "$check" >/dev/null 2>&1; }
present && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "$package not found: installing Debian's $package package"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "$package" >/dev/null 2>&1 ||
        { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null &&
          DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "$package" >/dev/null; }
    present && exit 0
fi
echo "csm needs Debian's '$package' package: install it" >&2
[ "$need" = optional ] && exit 0
exit 1
