"""Record the HAR fixtures of tests/test_check_har.py from real clients hitting the fixture app.

    .venv/bin/python tests/data/har/record.py      # rewrites tests/data/har/*.har

- httpx.har: httpx (follow_redirects=True) with event hooks writing one HAR entry per hop;
- naive-client.har: a hand-written follow loop with the classic bugs (always switches to GET,
  keeps Authorization across origins), on httpx with follow_redirects=False;
- curl.har: curl -v (parsed into HAR entries), including `curl -X POST -L`, which keeps POST
  after a 303 (curl documents this: -X overrides the method on every hop).

Hosts and ports are normalised to 127.0.0.1:8765 and localhost:8765 so the files are stable.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from check_servers import start_fixture  # noqa: E402

PORT = 8765


def _norm(text: str, port: int) -> str:
    return text.replace(f":{port}", f":{PORT}")


def _headers(pairs: list[tuple[str, str]], port: int) -> list[dict[str, str]]:
    return [{"name": k, "value": _norm(v, port)} for k, v in pairs]


def _entry(method: str, url: str, req_headers: list[tuple[str, str]], req_body: bytes | None, status: int,
           reason: str, res_headers: list[tuple[str, str]], res_body: bytes | None, port: int) -> dict[str, Any]:
    location = next((v for k, v in res_headers if k.lower() == "location"), "")
    content: dict[str, Any] = {"size": len(res_body) if res_body is not None else -1,
                               "mimeType": next((v for k, v in res_headers if k.lower() == "content-type"), "")}
    if res_body:
        try:
            content["text"] = res_body.decode("utf-8")
        except UnicodeDecodeError:
            content["text"], content["encoding"] = base64.b64encode(res_body).decode(), "base64"
    request: dict[str, Any] = {"method": method, "url": _norm(url, port), "httpVersion": "HTTP/1.1",
                               "headers": _headers(req_headers, port), "queryString": [], "cookies": [],
                               "headersSize": -1, "bodySize": len(req_body or b"")}
    if req_body:
        mime = next((v for k, v in req_headers if k.lower() == "content-type"), "application/octet-stream")
        request["postData"] = {"mimeType": mime, "text": req_body.decode("utf-8")}
    return {
        "startedDateTime": datetime.now(UTC).isoformat(), "time": 0, "cache": {}, "timings": {"send": 0, "wait": 0,
                                                                                             "receive": 0},
        "request": request,
        "response": {"status": status, "statusText": reason, "httpVersion": "HTTP/1.1",
                     "headers": _headers(res_headers, port), "cookies": [], "content": content,
                     "redirectURL": _norm(urljoin(url, location), port) if location else "", "headersSize": -1,
                     "bodySize": len(res_body) if res_body is not None else -1},
    }


def _har(entries: list[dict[str, Any]], creator: str) -> dict[str, Any]:
    return {"log": {"version": "1.2", "creator": {"name": creator, "version": "1"}, "entries": entries}}


def record_httpx(base: str, port: int) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []

    def on_response(response: httpx.Response) -> None:
        response.read()
        req = response.request
        req.read()
        entries.append(_entry(req.method, str(req.url), list(req.headers.multi_items()), req.content,
                              response.status_code, response.reason_phrase, list(response.headers.multi_items()),
                              response.content, port))

    with httpx.Client(follow_redirects=True, event_hooks={"response": [on_response]}) as client:
        client.get(f"{base}/clean/moved")                                   # 301 -> 200
        first = client.get(f"{base}/clean/ok")
        client.get(f"{base}/clean/ok", headers={"If-None-Match": first.headers["etag"]})  # 304, paired with the 200
        client.post(f"{base}/clean/controller", json={"activate": True})  # 303 -> GET, body dropped
        client.post(f"{base}/clean/temporary-echo", json={"n": 1})        # 307 -> POST with the same body
        client.get(f"{base}/v/302")                                         # violations seen in traffic
        client.get(f"{base}/v/303-body")
        client.get(f"{base}/v/304-always")
        client.get(f"{base}/v/inm-ignored", headers={"If-None-Match": '"v1"'})
    return _har(entries, "httpx")


def record_naive(base: str, port: int) -> dict[str, Any]:
    """A hand-written client with the bugs the checks look for: GET after every redirect, and
    Authorization kept across origins."""
    entries: list[dict[str, Any]] = []
    with httpx.Client(follow_redirects=False) as client:
        for method, path, body in (("POST", "/clean/temporary-echo", b'{"n": 1}'), ("GET", "/v/cross-origin", None)):
            url, headers = f"{base}{path}", {"Authorization": "Bearer demo-token", "Content-Type": "application/json"}
            for _ in range(5):
                response = client.request(method, url, headers=headers, content=body)
                req = response.request
                entries.append(_entry(req.method, str(req.url), list(req.headers.multi_items()), req.content,
                                      response.status_code, response.reason_phrase,
                                      list(response.headers.multi_items()), response.content, port))
                if "location" not in response.headers:
                    break
                url, method, body = urljoin(url, response.headers["location"]), "GET", None
    return _har(entries, "naive-client")


_REQ = re.compile(r"^> ([A-Z]+) (\S+) HTTP/[\d.]+$")
_RES = re.compile(r"^< HTTP/[\d.]+ (\d{3}) ?(.*)$")


def _curl(base: str, port: int, *args: str, data: bytes | None = None) -> list[dict[str, Any]]:
    run = subprocess.run(["curl", "-sv", "-o", "/dev/null", *args], capture_output=True, check=False, timeout=30)
    entries: list[dict[str, Any]] = []
    method = url = ""
    req_headers: list[tuple[str, str]] = []
    res_headers: list[tuple[str, str]] = []
    status, reason = 0, ""

    def flush() -> None:
        if method and status:
            length = next((int(v) for k, v in req_headers if k.lower() == "content-length"), 0)
            res_len = next((int(v) for k, v in res_headers if k.lower() == "content-length"), None)
            entry = _entry(method, url, req_headers, data if length and data else None, status, reason,
                           res_headers, None, port)
            entry["response"]["bodySize"] = entry["response"]["content"]["size"] = res_len if res_len is not None else -1
            entries.append(entry)

    for line in run.stderr.decode("latin-1").splitlines():
        line = line.rstrip("\r")
        if m := _REQ.match(line):
            flush()
            method, url, req_headers, res_headers, status = m.group(1), m.group(2), [], [], 0
        elif m := _RES.match(line):
            status, reason = int(m.group(1)), m.group(2)
        elif line.startswith(("> ", "< ")) and ":" in line:
            name, _, value = line[2:].partition(":")
            (req_headers if line[0] == ">" else res_headers).append((name.strip(), value.strip()))
            if line[0] == ">" and name.lower() == "host":
                url = f"http://{value.strip()}{url}" if url.startswith("/") else url
    flush()
    return entries


def record_curl(base: str, port: int) -> dict[str, Any]:
    body = b'{"activate": true}'
    entries = _curl(base, port, "-L", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                    body.decode(), f"{base}/clean/controller", data=body)  # -X POST: curl keeps POST after 303
    entries += _curl(base, port, "-L", "-H", "Content-Type: application/json", "--data-binary", body.decode(),
                     f"{base}/clean/temporary-echo", data=body)            # 307: POST re-sent with its body
    entries += _curl(base, port, "-L", f"{base}/clean/moved")
    return _har(entries, "curl")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_fixture(Path(tmp))
        try:
            base = server.base
            outputs = {"httpx.har": record_httpx(base, server.port), "naive-client.har": record_naive(base, server.port)}
            if shutil.which("curl"):
                outputs["curl.har"] = record_curl(base, server.port)
            else:
                print("curl not found: curl.har not recorded", file=sys.stderr)
        finally:
            server.stop()
    for name, har in outputs.items():
        (HERE / name).write_text(json.dumps(har, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {HERE / name} ({len(har['log']['entries'])} entries)")


if __name__ == "__main__":
    main()
