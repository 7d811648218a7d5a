"""The egress policy: which addresses a fetch may connect to, decided on the resolved address.

Every outbound connection of a fetch (the post page, yt-dlp's own requests, their redirects)
goes through ``connect_checked``: it resolves the host itself, refuses the whole name when any
address it resolves to is refused, and connects to an address it checked. A URL check before the
fetch would not do: DNS can answer differently the second time, and a redirect names a new host.

Only ``VERIFY_FETCH_ALLOWED_ADDRESSES`` (``host:port`` pairs) lets a refused address through.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_6TO4 = ipaddress.ip_network("2002::/16")
# Networks for private use (RFC 1918, unique local IPv6); other non-public ranges count as reserved.
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))

# The class of a refused address, as the failure message names it.
ADDRESS_CLASSES = {
    "unspecified": "an unspecified address",
    "loopback": "a loopback address",
    "private": "a private network address",
    "link_local": "a link-local address (this includes the cloud metadata service 169.254.169.254)",
    "cgnat": "a carrier-grade NAT address (100.64.0.0/10)",
    "multicast": "a multicast address",
    "reserved": "a reserved or non-public address",
}


class EgressRefused(Exception):
    """A connection the policy does not allow: names the address and its class, never any content."""

    def __init__(self, *, host: str, address: str, port: int, address_class: str):
        self.host, self.address, self.port, self.address_class = host, address, port, address_class
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = self.address if self.host == self.address else f"{self.host} ({self.address})"
        return (
            f"Refused to connect to {where} port {self.port}: it is {ADDRESS_CLASSES[self.address_class]}, "
            "which fetches may not reach."
        )


@dataclass(frozen=True)
class EgressPolicy:
    """The addresses let through despite their class, as (address, port) pairs."""

    allowed: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def from_setting(cls, entries: list[str]) -> EgressPolicy:
        """Return the policy for ``VERIFY_FETCH_ALLOWED_ADDRESSES`` entries (``host:port``)."""
        return cls(allowed=frozenset(allowed_address_parse(entry) for entry in entries))


def allowed_address_parse(entry: str) -> tuple[str, int]:
    """Return (address, port) of one ``host:port`` entry; an IPv6 host goes in brackets. Raise ValueError."""
    host, sep, port_text = entry.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{entry!r} is not host:port")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    return str(ipaddress.ip_address(host)), int(port_text)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _6TO4:
        return address.sixtofour
    return None


def address_class(address: IPAddress) -> str | None:
    """Return the class of an address fetches may not reach (a key of ADDRESS_CLASSES), or None if public.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, NAT64 64:ff9b::/96, 6to4) is judged by
    the IPv4 address it leads to.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return "reserved"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_class(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "cgnat"
    if any(address in network for network in _PRIVATE if network.version == address.version):
        return "private"
    if address.is_reserved or address.is_private or not address.is_global:
        return "reserved"
    return None


def address_refusal(address: str, port: int, *, policy: EgressPolicy, host: str = "") -> EgressRefused | None:
    """Return why a connection to this resolved address and port is refused, or None if it is allowed."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])  # a zone index (fe80::1%eth0) is not part of it
    refused = address_class(parsed)
    if refused is None or (str(parsed), port) in policy.allowed:
        return None
    return EgressRefused(host=host or str(parsed), address=str(parsed), port=port, address_class=refused)


def resolve_checked(host: str, port: int, *, policy: EgressPolicy) -> list[tuple[int, str]]:
    """Resolve host and return its (family, address) pairs; raise EgressRefused if any is refused."""
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    resolved: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        address = str(sockaddr[0])
        refusal = address_refusal(address, port, policy=policy, host=host)
        if refusal is not None:
            raise refusal
        if (family, address) not in resolved:
            resolved.append((family, address))
    if not resolved:
        raise OSError(f"{host} has no address")
    return resolved


def connect_checked(host: str, port: int, *, policy: EgressPolicy, timeout_s: float) -> socket.socket:
    """Open a TCP connection to host:port, to an address the policy allows, checked after resolution."""
    last_error: OSError | None = None
    for family, address in resolve_checked(host, port, policy=policy):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    raise last_error or OSError(f"could not connect to {host}:{port}")
