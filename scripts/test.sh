#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what the tests
# need (system tools as root, the package with its test extras), then pytest.
set -uo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A tools=(
  [ip]=iproute2 [ethtool]=ethtool [tshark]=tshark [vtysh]=frr
  [traceroute]=traceroute [iperf3]=iperf3 [nc]=netcat-openbsd
  [tcpdump]=tcpdump [dot]=graphviz [chromium]=chromium [ping]=iputils-ping
  # strongSwan gateways (lsr/lab/strongswan.py): charon + kernel-libipsec, AES-GCM, X25519
  [swanctl]="strongswan-swanctl strongswan-charon libcharon-extra-plugins libstrongswan-extra-plugins libstrongswan-standard-plugins"
)
missing=()
for cmd in "${!tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd || -x /usr/bin/$cmd ]] || missing+=(${tools[$cmd]})  # unquoted: one tool may need several packages
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "warning: apt-get install failed; tests needing ${missing[*]} will skip"
  else
    echo "note: not root, not installing ${missing[*]}; tests that need them will skip"
  fi
fi

python3 -m pip install -q -e '.[test]' 2>&1 | grep -v "Running pip as the 'root' user" || true

python3 -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests"
  rc=0
fi
exit $rc
