"""Checklist 50: the admin API over TLS 1.2 or newer, and never plain HTTP off loopback.

A self-signed certificate made with the `openssl` command, the real `redirectory serve`, and
real TLS handshakes from Python's ssl module.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "admin.crt", tmp / "admin.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]) -> Iterator[ServeProcess]:
    proc = start_serve(tmp_path_factory.mktemp("tls-serve"), admin_tls=certificate)
    yield proc
    proc.stop()


def _handshake(port: int, cafile: Path, version: ssl.TLSVersion) -> str | None:
    """The negotiated protocol when the client offers only `version`, or None if refused."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.minimum_version = context.maximum_version = version
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.version()
    except (ssl.SSLError, ConnectionError):
        return None


def test_50_admin_api_is_served_over_tls(served: ServeProcess, certificate: tuple[Path, Path]) -> None:
    assert served.admin.startswith("https://")
    key = cli("keys", "create", "tls", "--scope", "read", "--database", served.database).stdout.strip().splitlines()[-1]
    r = httpx.get(served.admin + "/api/v1/rules", headers={"x-api-key": key}, verify=ssl.create_default_context(cafile=str(certificate[0])))
    assert r.status_code == 200 and "items" in r.json()
    assert "admin on https://" in served.output()


def test_50_tls_1_2_and_1_3_accepted_older_refused(served: ServeProcess, certificate: tuple[Path, Path]) -> None:
    assert _handshake(served.admin_port, certificate[0], ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(served.admin_port, certificate[0], ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert _handshake(served.admin_port, certificate[0], ssl.TLSVersion.TLSv1_1) is None


def test_50_no_plain_http_on_the_tls_port(served: ServeProcess) -> None:
    try:
        r = httpx.get(f"http://127.0.0.1:{served.admin_port}/healthz", timeout=5)
    except httpx.HTTPError:
        return  # the connection is refused or dropped: nothing is served in clear text
    assert r.status_code >= 400 and "revision" not in r.text


def test_50_plain_http_refused_off_loopback(tmp_path: Path) -> None:
    done = cli("serve", "--database", f"sqlite:///{tmp_path}/x.db", "--admin-host", "0.0.0.0")
    assert done.returncode != 0
    assert "--admin-tls-cert" in done.stderr and "--admin-plain-http" in done.stderr
    assert "Traceback" not in done.stderr


def test_50_bad_certificate_files_are_named(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    done = cli("serve", "--database", f"sqlite:///{tmp_path}/x.db", "--admin-tls-cert", str(junk),
               "--admin-tls-key", str(certificate[1]))
    assert done.returncode != 0 and str(junk) in done.stderr and "Traceback" not in done.stderr
    done = cli("serve", "--database", f"sqlite:///{tmp_path}/x.db", "--admin-tls-cert", str(certificate[0]))
    assert done.returncode != 0 and "--admin-tls-key" in done.stderr
    missing = tmp_path / "missing.key"
    done = cli("serve", "--database", f"sqlite:///{tmp_path}/x.db", "--admin-tls-cert", str(certificate[0]),
               "--admin-tls-key", str(missing))
    assert done.returncode != 0 and "no such file" in done.stderr
