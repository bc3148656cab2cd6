"""The addresses students' browsers can use to reach this machine."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import psutil

LISTEN_EVERYWHERE = ("0.0.0.0", "::", "")


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses on its network interfaces, leaving out loopback and link-local."""
    found: list[str] = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family.name != "AF_INET":
                continue
            ip = ipaddress.ip_address(address.address)
            if not (ip.is_loopback or ip.is_link_local) and address.address not in found:
                found.append(address.address)
    return found


def open_addresses(host: str, port: int) -> list[str]:
    """The addresses a browser should open to reach a server listening on host:port."""
    if host not in LISTEN_EVERYWHERE:
        return [f"http://{host}:{port}/"]
    return [f"http://{address}:{port}/" for address in lan_addresses()] + [f"http://127.0.0.1:{port}/ (this machine)"]


def is_loopback(hostname: str) -> bool:
    """True for a host name (without port) that only this machine can reach."""
    return hostname in ("localhost", "::1") or hostname.startswith("127.")


@dataclass(frozen=True)
class Listening:
    """Where the server listens: the host and port `flashapp serve` was given."""

    host: str
    port: int

    @property
    def local_only(self) -> bool:
        """Whether only this machine can connect (a loopback host)."""
        return is_loopback(self.host)
