"""OpenAPI pieces shared by the admin routes: the error format, the rule body, common responses.

The routes read their JSON bodies themselves (to report every problem at once, in the guide's
format); these schemas make the OpenAPI document say what they accept and answer.
"""

from __future__ import annotations

from typing import Any

from redirectory.rules.model import FIELDS, Field, FieldKind
from redirectory.semantics import RULE_STATUSES

ERROR_ITEM: dict[str, Any] = {
    "type": "object",
    "required": ["detail", "detailKey"],
    "properties": {
        "detail": {"type": "string"},
        "detailKey": {"type": "string"},
        "detailKeyParameters": {"type": "array", "items": {"type": "string"}},
        "fields": {"type": "array", "items": {"type": "string"}},
        "index": {"type": "integer", "minimum": 0},
        "status": {"type": "integer"},
    },
}
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "titleKey", "errors"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "titleKey": {"type": "string"},
        "instance": {"type": "string", "format": "uuid"},
        "timestamp": {"type": "string", "format": "date-time"},
        "errors": {"type": "array", "minItems": 1, "items": ERROR_ITEM},
    },
}
_DESCRIPTIONS = {
    400: "Invalid request: every problem listed, each with `fields` (also an API key in the URL, a control "
         "character in a query parameter, JSON nested too deep or holding U+0000)",
    401: "No API key, or an unknown or revoked one",
    403: "The key's scope does not allow this",
    404: "No such resource",
    405: "Method not allowed here (see `Allow`)",
    406: "`Accept` admits no JSON",
    410: "The revision is older than the history kept (see the retention in docs/admin-api.md, History)",
    412: "`If-Match` is stale",
    413: "The body is larger than this route takes (see docs/admin-api.md, Limits); the connection is closed",
    415: "The body's media type is not accepted",
    422: "The change conflicts with the table (a loop, duplicate or ambiguity); invalid fields are 400",
    428: "`If-Match` is required",
    429: "Rate limit reached (see `Retry-After`)",
    500: "Server error (no details)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these error statuses, in the guide's error format."""
    return {code: {"description": _DESCRIPTIONS[code], "content": {"application/json": {"schema": ERROR}}}
            for code in codes}


#: Every route may answer these (auth, negotiation, body size, rate limit, server error).
COMMON = errors(400, 401, 403, 404, 405, 406, 413, 415, 429, 500)

#: The JSON schema of a rule field's value, by `Field.kind` (nullable: the field may be left unset);
#: its limits (`Field.limit`) are added by `_field_schema`.
_KIND_SCHEMAS: dict[FieldKind, dict[str, Any]] = {
    "pattern": {"type": ["string", "null"], "pattern": "^/", "description": "/path, /path/{name}, //host/path"},
    "regex": {"type": ["string", "null"], "minLength": 1, "description": "An RE2 regular expression"},
    "target": {"type": "string", "pattern": "^(/|[hH][tT][tT][pP][sS]?://)|^$",
               "description": "An absolute path or http(s) URL; {name} placeholders come from `from`. "
                              "Empty (or left out) for a rule with status 404, which redirects nothing"},
    "status": {"type": "integer", "enum": list(RULE_STATUSES)},
    "methods": {"type": ["array", "null"], "items": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}},
    "query": {"oneOf": [
        {"type": "string", "enum": ["keep", "drop"]},
        {"type": "object", "additionalProperties": False, "properties": {
            "strip": {"type": "array", "items": {"type": "string"}, "maxItems": 64,
                      "description": "Parameters removed before matching and never passed (utm_* ends with anything)"},
            "pass": {"oneOf": [{"type": "string", "enum": ["all", "none", "unmatched"]},
                               {"type": "array", "items": {"type": "string"}, "maxItems": 64}]}}},
    ], "description": "keep, drop, or a query policy {strip, pass}"},
    "querymatch": {"type": ["object", "null"], "additionalProperties": {"type": ["string", "integer"]},
                   "maxProperties": 32,
                   "description": "Query parameters the request must carry: {name: value}, '*' for any value "
                                  "(the text form name=value&name=* is accepted too)"},
    "scheme": {"type": ["string", "null"], "enum": ["http", "https", None],
               "description": "Only requests that came with this scheme (the gateway's own is http; a trusted "
                              "proxy's X-Forwarded-Proto or --public-url's scheme when given)"},
    "timestamp": {"type": ["string", "null"], "format": "date-time"},
    "seconds": {"oneOf": [{"type": ["integer", "null"], "minimum": 0}, {"type": "string", "enum": ["ramp"]}],
                "description": "Seconds of Cache-Control max-age, or ramp (permanent redirects: 5 minutes, "
                               "doubled each day the rule stays unchanged, up to a year)"},
    "integer": {"type": "integer"},
    "flag": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "note": {"type": ["string", "null"]},
    "phases": {"type": ["array", "null"], "maxItems": 8, "items": {
        "type": "object", "required": ["starts", "status"], "additionalProperties": False, "properties": {
            "starts": {"type": "string", "format": "date-time"},
            "status": {"type": "integer", "enum": [301, 303, 307, 308]},
            "cache": {"type": ["integer", "null"], "minimum": 0}}},
        "description": "Later statuses, each from its start: "
                       "[{\"starts\": \"2027-03-01T00:00:00Z\", \"status\": 308}]"},
    "links": {"type": ["object", "null"], "additionalProperties": {"type": "string"}, "maxProperties": 16,
              "description": "Link relations sent with the rule's answers: {\"successor-version\": \"/api/v2/users\"}"},
}


def _field_schema(f: Field) -> dict[str, Any]:
    """The schema of field `f`'s value: its kind's, with its `FieldLimit` as maxLength/maxItems (a
    limit in UTF-8 bytes is at least as many characters; the validator checks the bytes and answers
    400 naming the field)."""
    prop = {**_KIND_SCHEMAS[f.kind]}
    limit = f.limit
    if limit is None or "object" in prop["type"]:
        return prop
    if limit.items is None:
        prop["maxLength"] = limit.size
    else:
        prop["maxItems"] = limit.items
        prop["items"] = {**prop["items"], "maxLength": limit.size}
    said = f"at most {limit.size} UTF-8 bytes" + (f" each, at most {limit.items} items" if limit.items else "")
    prop["description"] = f"{prop['description']}; {said}" if "description" in prop else said[0].upper() + said[1:]
    return prop


RULE_INPUT: dict[str, Any] = {
    "type": "object",
    "description": "A rule, with the fields of a rule file in camelCase (see docs/rules.md).",
    "properties": {
        **{f.api: _field_schema(f) for f in FIELDS},
        "uuid": {"type": "string", "format": "uuid"},
    },
}


def json_body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}}}}


BULK_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "items": {"type": "array", "minItems": 1, "maxItems": 1000, "items": RULE_INPUT},
        "metadata": {"type": "object", "properties": {
            "etags": {"type": "object", "additionalProperties": {"type": "string"}}}},
    },
}
#: A rule file. Any document is accepted (202): the import checks it and its report lists every
#: problem, so the schema constrains nothing beyond the media type. (nginx, Apache and Netlify
#: files are also taken as text/plain or application/octet-stream, with ?format=.)
_ANY_FILE = {"description": "A rule file (docs/rules.md), or an nginx, Apache or Netlify file with ?format="}
FILE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    media: {"schema": _ANY_FILE} for media in ("application/yaml", "text/yaml", "application/json", "text/csv")}}}


#: `If-Match` as a required header (updates and deletes).
IF_MATCH: dict[str, Any] = {"name": "If-Match", "in": "header", "required": True,
                            "description": "The resource's current ETag (or *)", "schema": {"type": "string"}}


def with_if_match(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(extra or {}), "parameters": [IF_MATCH]}


#: Conditional GET/HEAD of an item (RFC 9110 §13.1.2-13.1.3): the request fields and the
#: validators every 200 carries, the 304 that answers a copy still current.
_HTTP_DATE = {"type": "string", "example": "Tue, 24 Nov 2026 10:00:00 GMT"}
CONDITIONAL_GET: dict[str, Any] = {"parameters": [
    {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "ETags of the copies you hold (or *): 304 when one is current"},
    {"name": "If-Modified-Since", "in": "header", "required": False, "schema": _HTTP_DATE,
     "description": "When your copy was last modified: 304 when it is current (ignored with If-None-Match)"},
]}
_VALIDATORS = {
    "ETag": {"required": True, "description": "Opaque version of the representation (for If-Match, If-None-Match)",
             "schema": {"type": "string"}},
    "Last-Modified": {"required": True, "description": "When it last changed (RFC 1123 date)", "schema": _HTTP_DATE},
}
CONDITIONAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The item, with its validators", "headers": _VALIDATORS},
    304: {"description": "Not Modified: your copy is current (empty body)", "headers": {"ETag": _VALIDATORS["ETag"]}},
}
