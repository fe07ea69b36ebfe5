"""``csm-certs``: a site's CA and one daemon certificate per host, for CSM's mutual TLS.

    csm-certs --dir /etc/ibm/csm/tls mgmt01=10.0.0.1 'svc[01-02]=10.0.1.[1-2]' 'c[001-128]'

Each host argument (or line of ``--hosts-file``) is a host name or a ClusterShell range,
optionally with ``=`` and more names or addresses for its subjectAltName, comma separated;
a range pairs with a range of as many entries, in order (``c[01-16]=10.2.0.[1-16]``).

What it writes under ``--dir``::

    ca.pem                  the CA certificate (0644): every daemon's ssl.ca_file
    private/ (0700)
      ca-key.pem            the CA's key (0600): keep it off the cluster after use
    hosts/
      <host>.pem            certificate and key (0600): that host's ssl.cred_pem
      <host>.crt            the certificate alone (0644)

An existing CA is used to sign, never replaced unless ``--new-ca`` is given; an existing
host's files are kept unless ``--renew`` is given.
"""

import argparse
import ipaddress
import os
import re
import sys

DEFAULT_DIR = "/etc/ibm/csm/tls"
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class CertsError(Exception):
    """Bad input or an existing file in the way: one line for the administrator."""


def _expand(pattern):
    """A ClusterShell range (``c[01-04]``) as a list; anything else as itself."""
    if "[" not in pattern:
        return [pattern]
    from ClusterShell.NodeSet import NodeSet, NodeSetParseError
    try:
        return list(NodeSet(pattern))
    except NodeSetParseError as exc:
        raise CertsError("invalid host range %r: %s" % (pattern, exc)) from None


def _check_name(name):
    """``name`` if it is a DNS name or an IP address, else ``CertsError``."""
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.rstrip(".").split(".")):
        raise CertsError("%r is neither a host name nor an IP address" % name)
    return name


def parse_host(names, extras=()):
    """``[(host, [subjectAltName entries])]`` for one host argument: ``names`` a name or a range,
    ``extras`` more names or addresses (each a range as long as ``names``, or for one host)."""
    hosts = _expand(names)
    sans = [[_check_name(host)] for host in hosts]
    for extra in extras:
        values = _expand(extra)
        if len(hosts) == 1:
            sans[0].extend(_check_name(value) for value in values)
        elif len(values) == len(hosts):
            for san, value in zip(sans, values):
                san.append(_check_name(value))
        else:
            raise CertsError("%s names %d hosts but %s has %d entries" % (names, len(hosts), extra, len(values)))
    return list(zip(hosts, sans))


def parse_argument(text):
    """``name[=extra,extra...]`` from the command line."""
    names, _, extras = text.partition("=")
    return parse_host(names.strip(), [e.strip() for e in extras.split(",") if e.strip()])


def read_hosts_file(path):
    """One host a line: a name or range, then its other names and addresses (blank-separated);
    ``#`` starts a comment."""
    hosts = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise CertsError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if fields:
            try:
                hosts.extend(parse_host(fields[0], fields[1:]))
            except CertsError as exc:
                raise CertsError("%s:%d: %s" % (path, number, exc)) from None
    return hosts


def _directory(path, mode):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    return path


class SiteCertificates:
    """The CA and host certificates kept in one directory (see the module's docstring)."""

    def __init__(self, directory, days=825, ca_days=3650, ca_name="csm site CA"):
        self.directory = directory
        self.days = days
        self.ca_days = ca_days
        self.ca_name = ca_name
        self.ca_file = os.path.join(directory, "ca.pem")
        self.ca_key = os.path.join(directory, "private", "ca-key.pem")
        self.hosts_dir = os.path.join(directory, "hosts")

    def authority(self, new_ca=False, out=None):
        """The site's CA: the one on disk, or a new one (where there is none, or ``new_ca``)."""
        from csm.net.certs import CertificateAuthority
        exists = os.path.exists(self.ca_file) or os.path.exists(self.ca_key)
        if exists and not new_ca:
            try:
                ca = CertificateAuthority.load(self.ca_file, self.ca_key, days=self.days)
            except OSError as exc:
                raise CertsError("cannot read the CA in %s: %s (--new-ca makes a new one and replaces "
                                 "it)" % (self.directory, exc.strerror or exc)) from None
            except ValueError as exc:
                raise CertsError("the CA in %s is unusable: %s" % (self.directory, str(exc).splitlines()[0]))
            self._say(out, "using the CA in %s" % self.ca_file)
            return ca
        _directory(self.directory, 0o755)
        _directory(os.path.dirname(self.ca_key), 0o700)
        ca = CertificateAuthority(self.ca_name, days=self.ca_days)
        ca.write_ca(self.ca_file, self.ca_key)
        ca.days = self.days
        self._say(out, "%s CA: %s (key %s)" % ("new" if exists else "made", self.ca_file, self.ca_key))
        return ca

    def issue(self, ca, hosts, renew=False, out=None):
        """Write each host's credential; ``[host]`` of those written."""
        from csm.net.certs import write_pem
        _directory(self.hosts_dir, 0o755)
        written = []
        for host, names in hosts:
            cred, crt = self.paths(host)
            if os.path.exists(cred) and not renew:
                self._say(out, "%s: kept %s (--renew replaces it)" % (host, cred))
                continue
            cert, key = ca.make(names, common_name=host)
            write_pem(crt, cert, 0o644)
            write_pem(cred, cert + key, 0o600)
            written.append(host)
            self._say(out, "%s: %s (%s)" % (host, cred, ", ".join(names)))
        return written

    def paths(self, host):
        """``(ssl.cred_pem, certificate alone)`` of ``host``."""
        return (os.path.join(self.hosts_dir, host + ".pem"), os.path.join(self.hosts_dir, host + ".crt"))

    @staticmethod
    def _say(out, line):
        if out is not None:
            out.write(line + "\n")


def build_parser():
    parser = argparse.ArgumentParser(prog="csm-certs", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("hosts", nargs="*", metavar="HOST[=NAME,ADDRESS...]",
                        help="host name or range (c[01-16]) with its other names and addresses")
    parser.add_argument("-f", "--hosts-file", help="file of hosts, one a line: name or range, then addresses")
    parser.add_argument("-d", "--dir", default=DEFAULT_DIR, help="where the CA and certificates go (%(default)s)")
    parser.add_argument("--days", type=int, default=825, help="validity of host certificates (%(default)s)")
    parser.add_argument("--ca-days", type=int, default=3650, help="validity of a new CA (%(default)s)")
    parser.add_argument("--ca-name", default="csm site CA", help="common name of a new CA (%(default)s)")
    parser.add_argument("--new-ca", action="store_true",
                        help="replace an existing CA and the listed hosts' files (certificates the old CA "
                             "signed stop working)")
    parser.add_argument("--renew", action="store_true", help="replace the files of hosts that have them")
    return parser


def main(argv=None, out=sys.stdout, err=sys.stderr):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        hosts = read_hosts_file(args.hosts_file) if args.hosts_file else []
        for text in args.hosts:
            hosts.extend(parse_argument(text))
        if args.days <= 0 or args.ca_days <= 0:
            raise CertsError("--days and --ca-days must be positive")
        site = SiteCertificates(args.dir, args.days, args.ca_days, args.ca_name)
        site.issue(site.authority(args.new_ca, out), hosts, args.renew or args.new_ca, out)
    except CertsError as exc:
        err.write("csm-certs: %s\n" % exc)
        return 1
    except OSError as exc:
        err.write("csm-certs: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
