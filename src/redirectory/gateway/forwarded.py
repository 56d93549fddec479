"""Which origin a client used: `--public-url`, or X-Forwarded-Proto/Host from a trusted proxy."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


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


def forwarded_origin(proto: str | None, host: str | None) -> str | None:
    """An origin from X-Forwarded-Proto/Host values (first of each list), or None if unusable."""
    if not host:
        return None
    host = host.split(",")[0].strip()
    scheme = (proto or "http").split(",")[0].strip().lower()
    if scheme not in ("http", "https") or not _HOSTPORT.match(host):
        return None
    return f"{scheme}://{host.lower()}"
