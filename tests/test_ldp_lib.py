"""`ldp.lib.Lib`: a peer's LIB row as an array indexed by FEC number, a mapping like the
dict it replaces (and 4 bytes a mapping instead of ~80)."""

from __future__ import annotations

import pickle
import sys
from ipaddress import IPv4Network

import pytest

from ldp.lib import Lib
from lsr.core.prefix import prefix


def N(s: str) -> IPv4Network:
    return IPv4Network(s)


def test_a_mapping_like_a_dict():
    lib = Lib()
    assert not lib and len(lib) == 0 and lib.get(N("10.0.0.0/30")) is None
    lib[N("10.0.0.0/30")] = 16
    lib[prefix(N("10.255.0.1/32"))] = 3  # interned or not, the same FEC
    lib[N("10.0.0.0/30")] = 17
    assert len(lib) == 2 and lib[prefix(N("10.0.0.0/30"))] == 17
    assert N("10.255.0.1/32") in lib and "x" not in lib
    assert lib == {N("10.0.0.0/30"): 17, N("10.255.0.1/32"): 3}
    assert {N("10.0.0.0/30"), N("10.1.0.0/30")} & lib.keys() == {N("10.0.0.0/30")}
    assert lib.pop(N("10.255.0.1/32")) == 3 and len(lib) == 1
    del lib[N("10.0.0.0/30")]
    assert not lib and list(lib) == []
    with pytest.raises(KeyError):
        del lib[N("10.0.0.0/30")]
    with pytest.raises(KeyError):
        lib[N("10.9.0.0/30")]


def test_pickled_by_fec_not_by_number():
    lib = Lib([(N("10.0.0.4/30"), 1000), (N("10.255.0.2/32"), 1048575)])
    back = pickle.loads(pickle.dumps(lib))
    assert back == lib and isinstance(back, Lib)


def test_four_bytes_a_mapping():
    fecs = [prefix(N(f"10.{k // 256}.{k % 256}.0/30")) for k in range(2000)]
    lib = Lib((p, 16 + k) for k, p in enumerate(fecs))
    as_dict = {p: 100000 + k for k, p in enumerate(fecs)}
    size_dict = sys.getsizeof(as_dict) + sum(sys.getsizeof(v) for v in as_dict.values())
    assert sys.getsizeof(lib.labels) < size_dict / 10
