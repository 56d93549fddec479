"""Which origin a client used: `--public-url`, or X-Forwarded-Proto/Host from a trusted proxy.

X-Forwarded-Host and X-Forwarded-Proto are lists: a proxy may append its element to what it
received, and a field sent on several lines is one list, the lines' values in order (RFC 9110
§5.3). The **last** element wins: it is the one the nearest proxy wrote, the proxy that
`--forwarded-allow-ips` trusts; the elements before it may come from the client itself. Empty
elements are skipped (RFC 9110 §5.6.1). A last host that is not a valid `host[:port]`, or a last
proto other than http/https, makes the forwarded origin unusable: it is ignored as a whole, never
replaced by an earlier element.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

#: A DNS host name (RFC 1123): dot-separated labels of letters, digits and inner hyphens.
_NAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


def origin_of(url: str) -> str:
    """`https://api.example.com/base` -> `https://api.example.com` (raises ValueError if invalid)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url}' is not an absolute http(s) URL such as https://api.example.com")
    if parts.username or parts.password:
        raise ValueError(f"'{url}' must not carry user information")
    _ = parts.port
    return f"{parts.scheme}://{parts.netloc.lower()}"


class TrustedProxies:
    """`--forwarded-allow-ips`: addresses or networks (CIDR) whose X-Forwarded-* we believe; `*` = all."""

    def __init__(self, spec: tuple[str, ...] | list[str]):
        self.any = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in spec:
            item = item.strip()
            if not item:
                continue
            if item == "*":
                self.any = True
                continue
            self.networks.append(ipaddress.ip_network(item, strict=False))

    def __bool__(self) -> bool:
        return self.any or bool(self.networks)

    def trusts(self, client_ip: str | None) -> bool:
        if self.any:
            return True
        if not client_ip or not self.networks:
            return False
        try:
            addr = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)


def last_element(value: str | None) -> str | None:
    """The last non-empty element of a comma-separated field value, or None."""
    if not value:
        return None
    return value.rstrip(" \t,").rpartition(",")[2].strip(" \t") or None


def valid_host_port(value: str) -> bool:
    """Whether `value` is `host[:port]` as in a Host header: a DNS name, an IPv4 address or a
    bracketed IPv6 address, and a port from 1 to 65535 (no zone ids, no trailing dot)."""
    if value.startswith("["):
        address, bracket, rest = value[1:].partition("]")
        if not bracket or "%" in address or not _is_ip(address, ipaddress.IPv6Address):
            return False
        if not rest:
            return True
        colon, port = rest[:1], rest[1:]
    else:
        name, colon, port = value.partition(":")
        if not _NAME.fullmatch(name):
            return False
        # A numeric last label is no DNS name (RFC 1123 §2.1): it must be an IPv4 address.
        if name.rpartition(".")[2].isdigit() and not _is_ip(name, ipaddress.IPv4Address):
            return False
        if not colon:
            return True
    return colon == ":" and bool(_PORT.fullmatch(port)) and int(port) <= 65535


def _is_ip(text: str, kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def forwarded_host(value: str | None) -> str | None:
    """The host[:port] an X-Forwarded-Host value gives (its last element), lower-cased; None if unusable."""
    host = last_element(value)
    return host.lower() if host is not None and valid_host_port(host) else None


def forwarded_origin(proto: str | None, host: str | None) -> str | None:
    """An origin from X-Forwarded-Proto/Host values (the last element of each), or None if unusable."""
    name = forwarded_host(host)
    if name is None:
        return None
    scheme = (last_element(proto) or "http").lower()
    if scheme not in ("http", "https"):
        return None
    return f"{scheme}://{name}"


def forwarded_scheme(proto: str | None) -> str | None:
    """The scheme an X-Forwarded-Proto value gives (its last element, http or https), or None."""
    scheme = last_element(proto)
    scheme = scheme.lower() if scheme is not None else None
    return scheme if scheme in ("http", "https") else None
