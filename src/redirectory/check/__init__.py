"""`redirectory check`: lint any API's redirects and conditional requests.

One exchange model (`model.py`) fed by three inputs (`live.py`, `har.py`, `openapi.py`); the
checks (`checks/`) are pure functions over it, registered with the ids of docs/checks.md;
`engine.run` applies a profile (`profiles.py`), ignores and a baseline (`baseline.py`); `report/`
writes text, JSON, SARIF 2.1.0 and JUnit.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("redirectory")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    VERSION = "0.0.0"

__all__ = ["VERSION"]
