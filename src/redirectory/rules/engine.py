"""The decision engine: a request goes in, the exact response comes out. No I/O.

Every response is built from `redirectory.semantics`:
- 301/307/308 carry `Location` and an empty body (`Content-Length: 0`); 303 carries `Location`
  and no body; HEAD is answered like GET (the adapter sends no body bytes);
- `Location` is absolute when the request's origin is known (`--public-url`, or a trusted proxy's
  X-Forwarded-Proto/Host), otherwise an absolute path; it never holds raw CR, LF or space;
- `Cache-Control: max-age=N` when the rule sets `cache`; permanent codes without `cache` get the
  configurable default (one hour) so no client caches a mistake forever;
- no rule, or a rule with `status: 404` (not redirected): 404 with a JSON body in the guide's error
  format; an unusable path: 400 or 414.
The server adds `Date`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from redirectory.rules import querymatch, querypolicy
from redirectory.rules.matcher import CompiledRule, Matcher, Values
from redirectory.rules.model import Rule, RuleSet, format_timestamp
from redirectory.rules.normalise import QUERY_SAFE, InvalidPath, encode_component, normalise_path
from redirectory.rules.patterns import normalise_host, valid_host
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, NOT_REDIRECTED, TABLE, BodyPolicy

Headers = tuple[tuple[str, str], ...]

#: Headers every gateway response carries (no software name with a version, ever).
SERVER_HEADERS: Headers = (("server", "redirectory"),)


class DecisionOutcome(StrEnum):
    """What became of a request (`Decision.outcome`; equal to its text, e.g. "no-rule")."""

    REDIRECT = "redirect"
    NO_RULE = "no-rule"
    INVALID_PATH = "invalid-path"
    URI_TOO_LONG = "uri-too-long"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    default_permanent_max_age: int = DEFAULT_PERMANENT_MAX_AGE
    max_path_length: int = 8192
    error_type_base: str = "urn:redirectory:error:"
    #: Keep exact rules as compact records (see `matcher`): for the gateway, whose table may hold a
    #: million of them. `matcher.rules()` and `matcher.get()` then give them without tags, note and lines.
    compact: bool = False


@dataclass(frozen=True, slots=True)
class Request:
    """What the engine needs of a request. `path` and `query` are as received (encoded)."""

    method: str
    path: str
    query: str = ""
    host: str | None = None
    origin: str | None = None  # "https://api.example.com" when known (public URL, trusted proxy)
    #: "http" or "https"; None: the origin's, else http (the gateway's own listener)
    scheme: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Headers
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Decision:
    response: Response
    outcome: DecisionOutcome
    path: str | None = None  # the normalised path, when it could be normalised
    rule: Rule | None = None
    values: Mapping[str, str | None] = field(default_factory=dict)
    location: str | None = None
    rule_id: str | None = None  # the matcher's id of the rule (the store's UUID for stored rules)


@dataclass(frozen=True, slots=True)
class Consideration:
    rule: Rule
    verdict: str  # "chosen" | "skipped: ..." | "not reached"


@dataclass(frozen=True, slots=True)
class Explanation:
    request: Request
    decision: Decision
    considered: tuple[Consideration, ...]


class Engine:
    """A compiled table plus the response rules. Update it with `add`/`remove`/`replace_all`."""

    def __init__(self, ruleset: RuleSet | Iterable[Rule] = (), options: EngineOptions | None = None):
        self.options = options or EngineOptions()
        rules = ruleset.rules if isinstance(ruleset, RuleSet) else tuple(ruleset)
        self.matcher = Matcher(
            rules, default_permanent_max_age=self.options.default_permanent_max_age, compact=self.options.compact
        )

    # -- decisions ---------------------------------------------------------------------
    def decide(self, request: Request, now: datetime | None = None) -> Decision:
        if len(request.path) > self.options.max_path_length:
            return self._error(
                request,
                414,
                "URI Too Long",
                "uriTooLong",
                f"The path is longer than {self.options.max_path_length} characters",
                outcome=DecisionOutcome.URI_TOO_LONG,
            )
        try:
            path = normalise_path(request.path)
        except InvalidPath as exc:
            return self._error(request, 400, "Bad Request", "invalidPath", f"The path is not valid: {exc}",
                               outcome=DecisionOutcome.INVALID_PATH)
        host = request.host
        if host is not None and self.matcher.has_host_rules:
            host = normalise_host(host)
        if now is None and self.matcher.windows:
            now = datetime.now(UTC)
        found = self.matcher.match(path, request.method, host, now, request.query,
                                   scheme_of(request) if self.matcher.schemes else None)
        if found is None:
            return self.not_found(request, path)
        compiled, values = found
        if compiled.rule.status == NOT_REDIRECTED:  # an exclusion: answered as if no rule matched
            unmatched = self.not_found(request, path)
            if compiled.lifecycle_headers:  # before `server`, the last header
                answer = unmatched.response
                headers = answer.headers[:-1] + compiled.lifecycle_headers + answer.headers[-1:]
                unmatched = replace(unmatched, response=replace(answer, headers=headers))
            return replace(unmatched, rule=compiled.rule)
        return self.redirect(request, path, compiled, values, now)

    def redirect(self, request: Request, path: str, compiled: CompiledRule, values: Values,
                 now: datetime | None = None) -> Decision:
        """The rule's redirect; `now` picks its phase (`phases`: the rule's own status before any)."""
        rule = compiled.rule
        status, cache_control = (compiled.answer_at(now) if compiled.phases or compiled.ramped
                                 else (rule.status, compiled.cache_control))
        target = compiled.target
        own: str | None = None
        if target.own_host:  # `https://{host}/...`: the host the request named, a valid name only
            own = normalise_host(request.host) if request.host else ""
            if not valid_host(own):
                return self.not_found(request, path)
        location = target.render(values, rule.regex_query, own)
        if request.query and rule.query != "drop":
            passed = querypolicy.passed(request.query, compiled.query_policy, compiled.query_conditions or ())
            if passed:
                location = merge_query(location, passed)
        if target.origin is None and request.origin:
            location = request.origin + location
        headers: list[tuple[str, str]] = [("location", location)]
        if cache_control:
            headers.append(("cache-control", cache_control))
        if compiled.lifecycle_headers:
            headers.extend(compiled.lifecycle_headers)
        sem = TABLE[status]
        if sem.body in (BodyPolicy.EMPTY, BodyPolicy.NONE):
            headers.append(("content-length", "0"))
        headers.extend(SERVER_HEADERS)
        return Decision(
            Response(status, tuple(headers)),
            DecisionOutcome.REDIRECT,
            path=path,
            rule=rule,
            values=values,
            location=location,
            rule_id=compiled.id,
        )

    def not_found(self, request: Request, path: str) -> Decision:
        shown = path if len(path) <= 200 else path[:200] + "..."
        return self._error(
            request,
            404,
            "Not Found",
            "notFound",
            f"No redirect rule matches {request.method} {shown}",
            params=[request.method, shown],
            outcome=DecisionOutcome.NO_RULE,
            path=path,
        )

    def _error(
        self,
        request: Request,
        status: int,
        title: str,
        key: str,
        detail: str,
        *,
        outcome: DecisionOutcome,
        params: list[str] | None = None,
        path: str | None = None,
    ) -> Decision:
        body = error_body(self.options.error_type_base, status, title, key, detail, params)
        headers = (
            ("content-type", "application/json"),
            ("content-language", "en"),
            ("content-length", str(len(body))),
            ("cache-control", "no-store"),
            *SERVER_HEADERS,
        )
        return Decision(Response(status, headers, body), outcome, path=path)

    # -- explanation (for `rules test` and the admin API's resolutions) -----------------
    def explain(self, request: Request, now: datetime | None = None) -> Explanation:
        decision = self.decide(request, now)
        considered: list[Consideration] = []
        if decision.path is not None:
            host = normalise_host(request.host) if request.host else None
            when = now or datetime.now(UTC)
            chosen = False
            scheme = scheme_of(request)
            for compiled, _values in self.matcher.candidates(decision.path, host, request.query):
                rule = compiled.rule
                if chosen:
                    considered.append(Consideration(rule, "not reached: a rule of higher precedence matched"))
                    continue
                if rule.methods is not None and request.method not in rule.methods:
                    considered.append(
                        Consideration(rule, f"skipped: method {request.method} not in {', '.join(rule.methods)}")
                    )
                elif compiled.has_window and not rule.active_at(when):
                    considered.append(Consideration(rule, f"skipped: outside its window ({_window(rule)})"))
                elif not rule.matches_scheme(scheme):
                    considered.append(Consideration(
                        rule, f"skipped: the request came with {scheme}, the rule answers {rule.scheme} only"))
                elif not compiled.accepts(request.method, None, request.query):
                    conditions = compiled.query_conditions or ()
                    considered.append(Consideration(
                        rule, f"skipped: the query does not meet its query conditions "
                              f"({querymatch.describe(conditions, rule.query_exact)})"))
                else:
                    considered.append(Consideration(rule, "chosen"))
                    chosen = True
        return Explanation(request, decision, tuple(considered))

    # -- updates -----------------------------------------------------------------------
    def add(self, rule: Rule) -> None:
        self.matcher.add(rule)

    def remove(self, rule_id: str) -> None:
        self.matcher.remove(rule_id)

    def __len__(self) -> int:
        return len(self.matcher)


def scheme_of(request: Request) -> str:
    """The request's scheme: its own, else its origin's, else http (the gateway listens for http)."""
    if request.scheme is not None:
        return request.scheme
    return "https" if request.origin is not None and request.origin.startswith("https:") else "http"


def merge_query(location: str, request_query: str) -> str:
    """Merge the request's query into the target's: the target's parameters win.

    Request parameters whose names the target already sets are dropped; the rest are appended
    in their original order. The request's text is re-encoded so it can hold no CR, LF or space.
    """
    query = encode_component(request_query, QUERY_SAFE | frozenset("&="))
    base, hash_, fragment = location.partition("#")
    path, q, existing = base.partition("?")
    if existing:
        names = {p.split("=", 1)[0] for p in existing.split("&")}
        extra = [p for p in query.split("&") if p and p.split("=", 1)[0] not in names]
        merged = existing + ("&" + "&".join(extra) if extra else "")
    else:
        merged = "&".join(p for p in query.split("&") if p)
    result = path + ("?" + merged if merged else "")
    return result + (hash_ + fragment if hash_ else "")


def error_body(
    type_base: str, status: int, title: str, key: str, detail: str, params: list[str] | None = None
) -> bytes:
    """A body in the guide's error format (`errors` array, type, title, titleKey, instance)."""
    instance = str(uuid.uuid4())
    error: dict[str, object] = {
        "detail": detail,
        "detailKey": f"redirectory.errors.{key}",
        "status": status,
    }
    if params:
        error["detailKeyParameters"] = params
    doc = {
        "type": type_base + key,
        "title": title,
        "titleKey": f"redirectory.errors.{key}",
        "instance": instance,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "errors": [error],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _window(rule: Rule) -> str:
    start = format_timestamp(rule.starts) if rule.starts else "-"
    end = format_timestamp(rule.ends) if rule.ends else "-"
    return f"{start} .. {end}"
