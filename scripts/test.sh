#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what the tests
# need (system tools as root, the package with its test extras), then pytest.
set -uo pipefail
cd "$(dirname "$0")/.."

# command -> Debian packages that provide it: the table `lsr demo` checks too
# (lsr/lab/systools.py; -P: run as a plain script, before the package is installed)
declare -A tools=()
while read -r cmd pkgs; do tools[$cmd]=$pkgs; done < <(python3 -P lsr/lab/systools.py)
if ((${#tools[@]} == 0)); then echo "scripts/test.sh: no tool table from lsr/lab/systools.py" >&2; exit 2; fi
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
# The browser tests' driver (a 50 MB wheel; it drives the system's Chromium, never downloads
# a browser): optional, its tests skip without it.
python3 -m pip install -q -e '.[browser]' 2>&1 | grep -v "Running pip as the 'root' user" || true
python3 -c "import playwright" 2>/dev/null \
  || echo "note: playwright not installed; the browser tests of lsr lab web will skip"
# Ray: `lsr sim run|lfib --ray` and its test on a local two-node cluster; optional too.
python3 -m pip install -q -e '.[ray]' 2>&1 | grep -v "Running pip as the 'root' user" || true
python3 -c "import ray" 2>/dev/null \
  || echo "note: ray not installed; the tests of lsr sim --ray will skip"

# Test files run side by side, a whole file per worker (its labs and module fixtures stay
# together): lab tests spend most of their time waiting on protocol timers, so 3 workers on
# 2 cores roughly halve the wall time. LSR_TEST_WORKERS=0 runs in one process; a `-n` in the
# arguments wins (it comes last).
workers=()
if python3 -c "import xdist" 2>/dev/null && [[ ${LSR_TEST_WORKERS:-3} != 0 ]]; then
  workers=(-n "${LSR_TEST_WORKERS:-3}" --dist loadfile)
fi
python3 -m pytest -q -p no:cacheprovider "${workers[@]}" "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests"
  rc=0
fi
exit $rc
