"""How one request resolves against a rule table: shared by `rules test` and the admin API.

`resolve` builds the engine's request from a URL, a method and request headers (Host,
X-Forwarded-Proto/Host) exactly as the gateway would see them, runs `Engine.explain`, and
`Resolution.to_json` gives the explanation that `rules test --json` prints and
`POST /api/v1/resolutions` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

from redirectory.rules.engine import Engine, EngineOptions, Explanation, Request
from redirectory.rules.model import Rule, RuleSet

__all__ = ["Resolution", "resolve", "rule_json"]


def rule_json(rule: Rule | None) -> dict[str, object] | None:
    """A rule as its file would hold it, plus its id and line when known."""
    if rule is None:
        return None
    data = rule.to_dict()
    if rule.id:
        data["id"] = rule.id
    if rule.line:
        data["line"] = rule.line
    return data


@dataclass(frozen=True, slots=True)
class Resolution:
    engine: Engine
    request: Request
    host: str | None
    explanation: Explanation

    @property
    def body(self) -> bytes:
        """The response body the gateway would send (none for HEAD)."""
        return b"" if self.request.method == "HEAD" else self.explanation.decision.response.body

    def to_json(self) -> dict[str, Any]:
        request, decision = self.request, self.explanation.decision
        response, body = decision.response, self.body
        return {
            "request": {"method": request.method, "path": request.path, "query": request.query, "host": self.host},
            "normalisedPath": decision.path,
            "outcome": decision.outcome,
            "rule": rule_json(decision.rule),
            "values": dict(decision.values),
            "considered": [{"rule": rule_json(c.rule), "verdict": c.verdict} for c in self.explanation.considered],
            "response": {"status": response.status, "headers": [list(h) for h in response.headers],
                         "body": body.decode() if body else ""},
        }


def _split(url: str) -> SplitResult:
    """`url` (absolute, or a path) split; ValueError in our words when it is not a URL."""
    example = "give an http(s) URL or a path, e.g. http://api.example.com/api/v1/users?x=1 or /api/v1/users"
    try:
        parts = urlsplit(url if "://" in url or url.startswith("/") else "/" + url)
        parts.port  # noqa: B018 - parses the port: a bad one raises here, not later
    except ValueError:
        netloc = url.split("://", 1)[-1].split("/", 1)[0]
        if netloc.count("[") != netloc.count("]"):
            reason = "its host has an unbalanced '[' or ']' (an IPv6 address is written [::1])"
        else:
            reason = "its port is not a number from 0 to 65535" if ":" in netloc else "it cannot be parsed"
        raise ValueError(f"URL: '{url}' is not a valid URL: {reason}; {example}") from None
    return parts


def resolve(ruleset: RuleSet, url: str, method: str = "GET", headers: Mapping[str, str] | None = None,
            public_url: str | None = None, options: EngineOptions | None = None,
            engine: Engine | None = None, at: datetime | None = None) -> Resolution:
    """Explain `method url` (with these request headers) against `ruleset`.

    `engine`, when given, is `ruleset` already compiled (callers that explain many requests
    against one table keep it, instead of compiling the table again for each).

    `url` is absolute (`http://host/path?q`) or a path; a `Host` header wins over the URL's
    host. `public_url` is `serve --public-url`; without it X-Forwarded-Proto/Host give the
    origin. Raises ValueError (naming the field at fault) for a URL or public URL that
    cannot be used.
    """
    from redirectory.forwarded import forwarded_origin, forwarded_scheme, origin_of

    lowered = {name.strip().lower(): value.strip() for name, value in (headers or {}).items()}
    parts = _split(url)
    if parts.scheme and parts.scheme not in ("http", "https"):
        raise ValueError(f"URL: scheme '{parts.scheme}' is not http or https")
    host = lowered.get("host") or parts.netloc or None
    origin = None
    if public_url:
        try:
            origin = origin_of(public_url)
        except ValueError as exc:
            raise ValueError(f"--public-url: {exc}") from None
    elif "x-forwarded-host" in lowered:
        origin = forwarded_origin(lowered.get("x-forwarded-proto"), lowered["x-forwarded-host"])
    engine = engine or Engine(ruleset, options or EngineOptions())
    # the scheme: a forwarded one, else the URL's, else the public URL's (the engine's default)
    scheme = forwarded_scheme(lowered.get("x-forwarded-proto")) or parts.scheme or None
    request = Request(method.upper(), parts.path or "/", parts.query, host, origin, scheme)
    return Resolution(engine, request, host, engine.explain(request, at))
