"""The addresses printed for students come from the machine's own network interfaces."""

from __future__ import annotations

import ipaddress

from flashapp.network import is_loopback, lan_addresses, open_addresses


def test_lan_addresses_are_real_non_loopback_ipv4_addresses():
    for address in lan_addresses():
        ip = ipaddress.ip_address(address)
        assert ip.version == 4 and not ip.is_loopback and not ip.is_link_local


def test_a_specific_host_is_printed_as_is_and_all_interfaces_list_every_address():
    assert open_addresses("192.168.1.20", 5000) == ["http://192.168.1.20:5000/"]
    everywhere = open_addresses("0.0.0.0", 8080)
    assert everywhere[-1] == "http://127.0.0.1:8080/ (this machine)"
    assert everywhere[:-1] == [f"http://{a}:8080/" for a in lan_addresses()]


def test_loopback_names():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "localhost", "::1"))
    assert not any(is_loopback(h) for h in ("192.168.1.2", "classroom.local", "0.0.0.0"))
