"""docs/toolkit.md: every Python snippet runs, and the three framework quick starts answer the
guide's cases (one subprocess, so Django's settings stay out of the other tests)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "toolkit.md"

CHECK = r'''
import json, sys, types, warnings
warnings.simplefilter("ignore")
snippets = json.loads(sys.stdin.read())
spaces = []
for i, code in enumerate(snippets):
    module = types.ModuleType(f"toolkit_doc_{i}")
    sys.modules[module.__name__] = module
    exec(compile(code, f"docs/toolkit.md snippet {i + 1}", "exec"), module.__dict__)
    spaces.append(module.__dict__)

from starlette.testclient import TestClient
from werkzeug.test import Client

fastapi_app = next(s["app"] for s in spaces if type(s.get("app")).__name__ == "FastAPI")
flask_app = next(s["app"] for s in spaces if type(s.get("app")).__name__ == "Flask")
django_app = next(s["application"] for s in spaces if "application" in s)
clients = {"fastapi": TestClient(fastapi_app, follow_redirects=False),
           "flask": Client(flask_app), "django": Client(django_app)}
for name, client in clients.items():
    r = client.get("/api/v1/users/42")
    assert (r.status_code, r.headers["location"]) == (301, "/api/v2/users/42"), name
    r = client.post("/api/v2/users/42/activate")
    assert (r.status_code, r.headers["location"]) == (303, "/api/v2/users/42"), name
    r = client.get("/api/v2/users/42")
    assert r.status_code == 200 and r.headers["etag"] == '"3"', (name, r.status_code)
    r = client.get("/api/v2/users/42", headers={"If-None-Match": '"3"'})
    assert r.status_code == 304, name
print("ok", len(snippets))
'''


def test_snippets_run_and_answer() -> None:
    snippets = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(snippets) >= 7
    result = subprocess.run([sys.executable, "-c", CHECK], input=json.dumps(snippets), capture_output=True,
                            text=True, cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"ok {len(snippets)}"
