"""strongSwan gateways (`kind: strongswan`) in labs: Debian's charon with kernel-libipsec.

A `strongswan` node is a customer-side gateway: a host-like namespace with
one link to a PE and a default route through it (`lsr.core.topology`
HOST_KINDS). After the lab has converged, `start()` runs charon in it for the
`ipsec.ike` connections that name it, with the config generated from the
topology:

* everything lives in `<lab state dir>/strongswan/<node>/` (root, 0700, inside
  the root-only lab directory; charon runs as root): strongswan.conf,
  swanctl.conf (the PSKs, 0600), the vici socket, charon.pid and charon.log
  (charon runs with umask 077);
* charon hard-codes `/var/run/charon.pid`, so it runs as
  `ip netns exec NS sh -c 'mount --bind DIR /run && exec charon'`: `ip netns
  exec` gives it a slave mount namespace, and its private /run is that node
  directory (the host's /run is untouched: checked with two charons in two
  namespaces);
* the kernel here has no ESP (XFRM answers ENOSYS), so ESP is charon's
  userspace `kernel-libipsec` (a TUN device `ipsec0` + routes in table 220),
  which carries ESP only in UDP 4500: our side of such a connection uses
  NAT-T (RFC 3948) and swanctl's `encap = yes` forces it on charon's side;
* the protected subnets of the node are given addresses on its `lo` (the
  first host address of each), so `ping -I <that address>` goes through the
  tunnel;
* charon's PID goes into the teardown registry (`strongswan:<node>`), so
  `lsr lab down` stops it;
* lifetimes are those our side uses (`ike.tunnel.Lifetimes`, from the
  connection's `rekey_seconds` and `ike_rekey_seconds`, strongSwan's defaults
  when absent), in whole seconds: Child SA `rekey_time`, `life_time` and
  `rand_time`, IKE SA `rekey_time`, `over_time` and `rand_time` (written so
  that charon's random part matches ours); both ends rekey, either may be first. `close_action = none`: a Child SA charon loses is created again by
  our side (see `ike.tunnel`), so the two never make duplicates.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ike.config import IkeSpec, RaSpec, ra_of_client
from ike.tunnel import Lifetimes
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab.files import make_dir, open_append, write_file
from lsr.lab.state import LabState, lab_dir, ns_name, pid_alive

KIND = "strongswan"
CHARON = Path(os.environ.get("LSR_CHARON", "/usr/lib/ipsec/charon"))
PLUGINS = ("random nonce openssl pem pkcs1 x509 pubkey curve25519 gcm aes sha1 sha2 hmac kdf "
           "kernel-libipsec kernel-netlink socket-default vici")
IKE_PROPOSAL = {128: "aes128gcm16-prfsha256-x25519", 256: "aes256gcm16-prfsha256-x25519"}
ESP_PROPOSAL = {128: "aes128gcm16", 256: "aes256gcm16"}


def missing_tools() -> str | None:
    """Why strongswan nodes cannot run here, or None."""
    if not CHARON.exists():
        return f"{CHARON} not found (apt-get install strongswan-charon libcharon-extra-plugins " \
               "libstrongswan-extra-plugins libstrongswan-standard-plugins strongswan-swanctl)"
    if shutil.which("swanctl") is None:
        return "swanctl not found (apt-get install strongswan-swanctl)"
    return None


def gateways(topo: Topology) -> list[str]:
    return [n.name for n in topo.nodes.values() if n.kind == KIND]


def node_dir(lab: str, node: str) -> Path:
    return lab_dir(lab) / "strongswan" / node


def connections(topo: Topology, node: str) -> list[IkeSpec]:
    cfg = topo.extra.get("ipsec")
    return [c for c in (cfg.ike if cfg else ()) if node in (c.left, c.right)]


def has_work(topo: Topology, node: str) -> bool:
    """The node takes part in an IKE connection or is a remote-access client."""
    return bool(connections(topo, node) or ra_of_client(topo, node))


CLIENT_DPD = 2  # s: a roaming client checks on its gateway this often (swanctl dpd_delay)
CLIENT_RETRANSMITS = 3  # charon.retransmit_tries for clients: a lost gateway is noticed in ~9 s


def render(topo: Topology, node: str) -> dict[str, str]:
    """strongswan.conf and swanctl.conf of one gateway or client (paths as charon sees them: /run)."""
    client = bool(ra_of_client(topo, node))
    tries = f"\n  retransmit_tries = {CLIENT_RETRANSMITS}" if client else ""
    conf = f"""charon {{
  load_modular = no
  load = {PLUGINS}
  install_routes = yes
  retransmit_timeout = 1.0
  retransmit_base = 1.4{tries}
  filelog {{
    lsr {{
      path = /run/charon.log
      time_format = %H:%M:%S
      default = 1
      ike = 2
      cfg = 2
      ike_name = yes
      flush_line = yes
    }}
  }}
  plugins {{
    vici {{
      socket = unix:///run/charon.vici
    }}
  }}
}}
"""
    conns, secrets = [], []
    for c in connections(topo, node):
        v = c.view(node)
        initiator = c.initiator == node
        esp = ESP_PROPOSAL[c.esp_bits] + ("-x25519" if c.pfs else "")
        t = swanctl_times(Lifetimes.of(c.rekey_seconds, c.ike_rekey_seconds))
        conns.append(f"""  {c.name} {{
    version = 2
    local_addrs = {v['local_addr']}
    remote_addrs = {v['remote_addr']}
    proposals = {IKE_PROPOSAL[c.ike_bits]}
    encap = yes
    mobike = no
    rekey_time = {t['ike_rekey']}s
    over_time = {t['ike_over']}s
    rand_time = {t['ike_rand']}s
    reauth_time = 0
    dpd_delay = 0
    local {{
      auth = psk
      id = {v['local_id']}
    }}
    remote {{
      auth = psk
      id = {v['remote_id']}
    }}
    children {{
      {c.name} {{
        mode = tunnel
        local_ts = {', '.join(str(n) for n in v['local_subnets'])}
        remote_ts = {', '.join(str(n) for n in v['remote_subnets'])}
        esp_proposals = {esp}
        rekey_time = {t['child_rekey']}s
        life_time = {t['child_life']}s
        rand_time = {t['child_rand']}s
        close_action = none
        start_action = {'start' if initiator else 'none'}
      }}
    }}
  }}""")
        psk = c.psk.decode().replace("\\", "\\\\").replace('"', '\\"')
        secrets.append(f"""  ike-{c.name} {{
    id-a = {v['local_id']}
    id-b = {v['remote_id']}
    secret = "{psk}"
  }}""")
    for r in ra_of_client(topo, node):
        c_conn, c_secret = _client_conn(topo, node, r)
        conns.append(c_conn)
        secrets.append(c_secret)
    swanctl = "connections {\n" + "\n".join(conns) + "\n}\nsecrets {\n" + "\n".join(secrets) + "\n}\n"
    return {"strongswan.conf": conf, "swanctl.conf": swanctl}


def _client_conn(topo: Topology, node: str, r: RaSpec) -> tuple[str, str]:
    """A roaming client's connection (vips: ask the gateway for an address) and its secret."""
    (iface,) = topo.nodes[node].interfaces.values()
    esp = ESP_PROPOSAL[r.esp_bits] + ("-x25519" if r.pfs else "")
    t = swanctl_times(Lifetimes.of(r.rekey_seconds, r.ike_rekey_seconds))
    my_id = r.client_id(node)
    conn = f"""  {r.name} {{
    version = 2
    local_addrs = {iface.address.ip}
    remote_addrs = {r.gateway_addr}
    vips = 0.0.0.0
    proposals = {IKE_PROPOSAL[r.ike_bits]}
    encap = yes
    mobike = no
    rekey_time = {t['ike_rekey']}s
    over_time = {t['ike_over']}s
    rand_time = {t['ike_rand']}s
    reauth_time = 0
    dpd_delay = {CLIENT_DPD}s
    local {{
      auth = psk
      id = {my_id}
    }}
    remote {{
      auth = psk
      id = {r.gateway_id}
    }}
    children {{
      {r.name} {{
        mode = tunnel
        remote_ts = {', '.join(str(n) for n in r.subnets)}
        esp_proposals = {esp}
        rekey_time = {t['child_rekey']}s
        life_time = {t['child_life']}s
        rand_time = {t['child_rand']}s
        close_action = none
        dpd_action = restart
        start_action = start
      }}
    }}
  }}"""
    psk = r.psk.decode().replace("\\", "\\\\").replace('"', '\\"')
    secret = f"""  ike-{r.name} {{
    id-a = {my_id}
    id-b = {r.gateway_id}
    secret = "{psk}"
  }}"""
    return conn, secret


def swanctl_times(lt: Lifetimes) -> dict[str, int]:
    """Our lifetimes in swanctl's whole seconds (rounded; the hard limit stays above). charon
    5.9 subtracts up to rand_time + 1 s from a Child SA's rekey_time and up to rand_time - 1 s
    from the IKE SA's (`ike.tunnel.Lifetimes`): rand_time is written so that the ranges match."""
    child_rekey, ike_rekey = math.ceil(lt.child_rekey), math.ceil(lt.ike_rekey)
    return {"child_rekey": child_rekey, "child_life": max(child_rekey + 1, math.ceil(lt.child_life)),
            "child_rand": max(0, round(lt.child_rand) - 1),
            "ike_rekey": ike_rekey, "ike_over": max(1, math.ceil(lt.ike_life - lt.ike_rekey)),
            "ike_rand": round(lt.ike_rand) + 1}


def _swanctl(lab: str, node: str, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
    d = node_dir(lab, node)
    return subprocess.run(["swanctl", *args, "--uri", f"unix://{d}/charon.vici"],
                          capture_output=True, text=True, timeout=timeout)


def start(topo: Topology, lab: str, state: LabState, deadline: float,
          query: Callable[..., Any]) -> dict[str, float]:
    """Start charon on every strongswan node that has IKE connections (after convergence).

    `query` is `lsr.lab.query` (our routers' management sockets), passed in so this module
    does not import the lab package that imports it.
    """
    nodes = [n for n in gateways(topo) if has_work(topo, n)]
    if not nodes:
        return {}
    why = missing_tools()
    if why:
        raise LsrError(f"strongswan node {nodes[0]}: {why}")
    t0 = time.monotonic()
    make_dir(lab_dir(lab) / "strongswan", 0o700, exist_ok=True)
    for node in nodes:
        d = make_dir(node_dir(lab, node), 0o700, exist_ok=True)
        for fname, text in render(topo, node).items():
            write_file(d / fname, text, 0o600)  # the PSKs are in swanctl.conf
        ns = ns_name(lab, node)
        addrs = sorted({str(n.network_address + 1) if n.prefixlen < 31 else str(n.network_address)
                        for c in connections(topo, node) for n in c.view(node)["local_subnets"]})
        for a in addrs:
            subprocess.run(["ip", "-n", ns, "addr", "replace", f"{a}/32", "dev", "lo"],
                           capture_output=True, timeout=10)
        env = {**os.environ, "STRONGSWAN_CONF": "/run/strongswan.conf"}
        logf = open_append(d / "stdout.log")  # handed to the child
        try:
            p = subprocess.Popen(
                ["ip", "netns", "exec", ns, "sh", "-c",
                 f"mount --bind {d} /run && exec {CHARON}"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, cwd="/", umask=0o077)
        finally:
            os.close(logf)
        state.add_pid(p.pid, f"strongswan:{node}")
    for node in nodes:
        d = node_dir(lab, node)
        while not (d / "charon.vici").exists():
            if time.monotonic() > deadline:
                raise LsrError(f"strongswan node {node}: charon did not start ({_tail(d)})")
            pids = [x for x in state.read().get("pids", []) if x["role"] == f"strongswan:{node}"]
            if pids and not pid_alive(pids[-1]["pid"], pids[-1]["start"]):
                raise LsrError(f"strongswan node {node}: charon exited ({_tail(d)})")
            time.sleep(0.05)
        while True:
            r = _swanctl(lab, node, "--load-all", "--file", str(d / "swanctl.conf"))
            out = (r.stderr or r.stdout).strip().splitlines()
            # charon binds the vici socket before it listens: a connect in between is
            # refused (swanctl then prints its usage after the error); try again
            if r.returncode == 0 or not any("Connection refused" in ln for ln in out[:2]) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if r.returncode != 0:
            why = next((ln for ln in out if "failed" in ln or "rror" in ln), out[-1] if out else "")
            raise LsrError(f"strongswan node {node}: swanctl --load-all: {why.strip()}")
    # our routers that initiate towards a gateway: go now
    for node in nodes:
        for c in connections(topo, node):
            if c.initiator != node:
                query(lab, c.initiator, "ipsec", view="initiate", conn=c.name)
    return {"strongswan": time.monotonic() - t0}


def _tail(d: Path) -> str:
    for name in ("charon.log", "stdout.log"):
        try:
            lines = (d / name).read_text().strip().splitlines()
        except OSError:
            continue
        if lines:
            return lines[-1]
    return "no log"


def show(lab: str, node: str, what: str) -> dict[str, Any]:
    """`lsr lab ipsec NAME <strongswan node> sas|policies`: swanctl's own view."""
    args = {"sas": ["--list-sas"], "policies": ["--list-conns"]}.get(what)
    if args is None:
        raise LsrError(f"'{what}' is not available for strongswan node {node} (sas, policies)")
    r = _swanctl(lab, node, *args)
    if r.returncode != 0:
        raise LsrError(f"{node}: swanctl {args[0]}: {(r.stderr or r.stdout).strip()}")
    return {"node": node, "kind": KIND, "what": what, "text": r.stdout}


def initiate(lab: str, node: str, conn: str, timeout: float = 15) -> str:
    """Ask charon to bring a connection's Child SA up now (`swanctl --initiate`)."""
    r = _swanctl(lab, node, "--initiate", "--child", conn, "--timeout", str(int(timeout)),
                 timeout=timeout + 5)
    return r.stdout + r.stderr


def log_path(lab: str, node: str) -> Path:
    return node_dir(lab, node) / "charon.log"
