"""`import redirectory.toolkit` (core and middlewares) works without any web framework installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = {"flask", "django", "starlette", "fastapi", "werkzeug", "litestar"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None
    sys.meta_path.insert(0, Block())
""")


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_core_and_middlewares_import_without_frameworks() -> None:
    result = run("""
        import redirectory.toolkit as tk
        from redirectory import conditional
        from redirectory.toolkit import asgi, wsgi, guard, operations, redirects, ruletable
        from redirectory.toolkit.redirects import redirect_response
        assert redirect_response(303, "/r").status == 303
        assert tk.evaluate("GET", tk.Preconditions(if_none_match='"a"'), tk.Validators.of(etag='"a"')).status == 304
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_an_adapter_without_its_framework_fails_clearly() -> None:
    result = run("import redirectory.toolkit.flask")
    assert result.returncode != 0 and "flask is blocked" in result.stderr
    result = run("""
        import redirectory.toolkit as tk
        class R:  # a request with .environ looks like Flask/Werkzeug
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
        try:
            tk.see_other(R(), "/x")
        except ImportError as exc:
            print("ImportError", exc)
    """)
    assert "ImportError" in result.stdout and "blocked" in result.stdout
