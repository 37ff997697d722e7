"""The system commands lsr and its tests run, and the Debian packages that provide them.

One table for `scripts/test.sh` (installs every missing package before the tests)
and `lsr demo` (checks its own subset up front). Standard library only: test.sh
runs this file as a script, `python3 -P lsr/lab/systools.py`, before the
package's Python dependencies are installed; it prints one `command package...`
line per command.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable

# command -> Debian 12 packages that provide it
PACKAGES: dict[str, tuple[str, ...]] = {
    "ip": ("iproute2",),
    "ethtool": ("ethtool",),
    "sysctl": ("procps",),
    "ping": ("iputils-ping",),
    "traceroute": ("traceroute",),
    "nc": ("netcat-openbsd",),  # `nc -N` (close on EOF) is OpenBSD netcat's
    "tshark": ("tshark",),
    "tcpdump": ("tcpdump",),
    "vtysh": ("frr",),
    "iperf3": ("iperf3",),
    "dot": ("graphviz",),
    "chromium": ("chromium",),
    "pdftotext": ("poppler-utils",),  # tests/test_report.py: text sizes in a printed report
    # strongSwan gateways (lsr/lab/strongswan.py): charon + kernel-libipsec, AES-GCM, X25519
    "swanctl": ("strongswan-swanctl", "strongswan-charon", "libcharon-extra-plugins",
                "libstrongswan-extra-plugins", "libstrongswan-standard-plugins"),
}

# What `lsr demo` runs on a real lab: namespaces, addresses and offloads (ip, ethtool,
# sysctl), then ping, traceroute and a TCP transfer with nc between two hosts.
DEMO: tuple[str, ...] = ("ip", "ethtool", "sysctl", "ping", "traceroute", "nc")


def missing(commands: Iterable[str], path: str | None = None) -> list[str]:
    """The commands not found on `path` (default: $PATH), in the given order."""
    return [c for c in commands if shutil.which(c, path=path) is None]


def packages(commands: Iterable[str]) -> list[str]:
    """The Debian packages that provide `commands`, each once, in order."""
    out: list[str] = []
    for c in commands:
        out.extend(p for p in PACKAGES[c] if p not in out)
    return out


def main() -> None:
    for cmd, pkgs in PACKAGES.items():
        print(cmd, *pkgs)


if __name__ == "__main__":
    sys.exit(main())
