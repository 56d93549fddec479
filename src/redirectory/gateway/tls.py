"""TLS for the admin listener (guide: the admin API is served only over TLS 1.2 or newer).

`redirectory serve --admin-tls-cert FILE --admin-tls-key FILE` serves the admin API over HTTPS,
TLS 1.2 at least. Without them the admin listener speaks plain HTTP, which is allowed only on a
loopback address (the default 127.0.0.1), or with `--admin-plain-http` when a TLS-terminating
proxy in front of it does the encryption.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_context(cert: str, key: str | None = None) -> ssl.SSLContext:
    """A server context with this certificate chain and key, TLS 1.2 or newer.

    Raises ValueError naming the file and what is wrong (unreadable, not PEM, key mismatch).
    """
    for path, what in ((cert, "--admin-tls-cert"), (key, "--admin-tls-key")):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{what} {path}: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ValueError(f"--admin-tls-cert {cert} / --admin-tls-key {key}: cannot load the certificate and key "
                         f"({exc.reason or exc}); give a PEM certificate chain and its PEM private key") from None
    except OSError as exc:
        raise ValueError(f"--admin-tls-cert {cert}: {exc.strerror}") from None
    return context


def check_admin_transport(host: str, cert: str | None, key: str | None, plain_http: bool) -> None:
    """ValueError unless the admin listener's transport settings are complete and safe."""
    if (cert is None) != (key is None):
        raise ValueError("give both --admin-tls-cert and --admin-tls-key (a PEM certificate chain and its key)")
    if cert is not None:
        server_context(cert, key)
        return
    if not plain_http and not is_loopback(host):
        raise ValueError(
            f"the admin API carries API keys: on --admin-host {host} it needs TLS "
            "(--admin-tls-cert FILE --admin-tls-key FILE), or --admin-plain-http if a TLS-terminating "
            "proxy in front of it does the encryption"
        )
