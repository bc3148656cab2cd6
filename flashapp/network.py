"""The addresses students' browsers can use to reach this machine."""

from __future__ import annotations

import socket


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback, as the system resolves its own name."""
    found: list[str] = []
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = info[4][0]
            if not address.startswith("127.") and address not in found:
                found.append(address)
    except OSError:
        pass
    return found


def open_addresses(host: str, port: int) -> list[str]:
    """The addresses a browser should open to reach a server listening on host:port."""
    if host not in ("0.0.0.0", "::", ""):
        return [f"http://{host}:{port}/"]
    return [f"http://{address}:{port}/" for address in lan_addresses()] + [f"http://127.0.0.1:{port}/ (this machine)"]


def is_loopback(hostname: str) -> bool:
    """True for a host name (without port) that only this machine can reach."""
    return hostname in ("localhost", "::1") or hostname.startswith("127.")
