"""OpenAPI 3.0 / 3.1 input (YAML or JSON): every documented response of every operation becomes
a synthetic exchange (declared headers, `content`, the operation in `doc`), located at its
file:line. Local `$ref`s are resolved; unresolvable or external ones become OAS-REF-UNRESOLVED
findings. `x-redirectory-ignore: [ID, ...]` on the root, a path, an operation or a response
suppresses those checks there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redirectory.check.engine import UnknownCheck, validate_ids
from redirectory.check.model import (
    Exchange,
    HeaderDoc,
    Location,
    OperationDoc,
    Request,
    Response,
    ResponseDoc,
)
from redirectory.check.srcmap import SourceError, escape, load

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
IGNORE_KEY = "x-redirectory-ignore"


class OpenAPIError(ValueError):
    """Not an OpenAPI 3.0/3.1 document; the message names FILE:LINE."""


@dataclass
class _Doc:
    path: Path
    root: dict[str, Any]
    lines: dict[str, int]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (pointer, message)

    def line(self, pointer: str) -> int | None:
        while pointer not in self.lines and pointer:
            pointer = pointer.rsplit("/", 1)[0]
        return self.lines.get(pointer)

    def where(self, pointer: str) -> str:
        return f"{self.path}:{self.line(pointer) or 1}"

    def resolve(self, value: Any, pointer: str) -> tuple[Any, str]:
        """Follow `$ref`s (local ones only); (None, pointer) and a problem when one cannot be followed."""
        seen: set[str] = set()
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            ref = value["$ref"]
            if not ref.startswith("#"):
                self.problems.append((pointer, f"external $ref {ref!r} is not followed ({self.where(pointer)})"))
                return None, pointer
            if ref in seen:
                self.problems.append((pointer, f"circular $ref {ref!r} ({self.where(pointer)})"))
                return None, pointer
            seen.add(ref)
            target: Any = self.root
            for token in ref[1:].split("/")[1:]:
                token = token.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and token in target:
                    target = target[token]
                elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                    target = target[int(token)]
                else:
                    self.problems.append((pointer, f"unresolvable $ref {ref!r} ({self.where(pointer)})"))
                    return None, pointer
            value = target
        return value, pointer

    def ignores(self, obj: Any, pointer: str) -> frozenset[str]:
        if not isinstance(obj, dict) or IGNORE_KEY not in obj:
            return frozenset()
        raw = obj[IGNORE_KEY]
        ids = [raw] if isinstance(raw, str) else raw
        where = f"{pointer}/{IGNORE_KEY}"
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise OpenAPIError(f"{self.where(where)}: {IGNORE_KEY} must be a check id or a list of check ids")
        try:
            return validate_ids(ids)
        except UnknownCheck as exc:
            raise OpenAPIError(f"{self.where(where)}: {exc}") from None


def _example(header: dict[str, Any]) -> str | None:
    schema = header.get("schema") if isinstance(header.get("schema"), dict) else {}
    for value in (header.get("example"), schema.get("example") if schema else None):
        if isinstance(value, str):
            return value
    examples = header.get("examples")
    if isinstance(examples, dict):
        for ex in examples.values():
            if isinstance(ex, dict) and isinstance(ex.get("value"), str):
                return str(ex["value"])
    return None


def _headers(doc: _Doc, response: dict[str, Any], pointer: str) -> dict[str, HeaderDoc]:
    out: dict[str, HeaderDoc] = {}
    headers = response.get("headers")
    if not isinstance(headers, dict):
        return out
    for name, raw in headers.items():
        hpointer = f"{pointer}/headers/{escape(name)}"
        header, _ = doc.resolve(raw, hpointer)
        if not isinstance(header, dict):
            header = {}
        schema, _ = doc.resolve(header.get("schema"), f"{hpointer}/schema")
        fmt = schema.get("format") if isinstance(schema, dict) else None
        out[name.lower()] = HeaderDoc(name, bool(header.get("required")), fmt if isinstance(fmt, str) else None,
                                      _example({**header, "schema": schema if isinstance(schema, dict) else {}}))
    return out


def _parameters(doc: _Doc, raw: Any, pointer: str) -> set[str]:
    names: set[str] = set()
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        param, _ = doc.resolve(item, f"{pointer}/{i}")
        if isinstance(param, dict) and param.get("in") == "header" and isinstance(param.get("name"), str):
            names.add(param["name"].lower())
    return names


def load_openapi(path: Path) -> list[Exchange]:
    try:
        root, lines = load(path)
    except SourceError as exc:
        raise OpenAPIError(str(exc)) from None
    if not isinstance(root, dict):
        raise OpenAPIError(f"{path}:1: not an OpenAPI document (expected a mapping with `openapi: 3.x`)")
    version = str(root.get("openapi", ""))
    if not (version.startswith("3.0") or version.startswith("3.1")):
        found = f"swagger {root['swagger']}" if "swagger" in root else (f"openapi {version}" if version else "none")
        raise OpenAPIError(f"{path}:{lines.get('/openapi', 1)}: not an OpenAPI 3.0/3.1 document "
                           f"(`openapi` version: {found}; expected 3.0.x or 3.1.x)")
    paths = root.get("paths") or {}
    if not isinstance(paths, dict):
        raise OpenAPIError(f"{path}:{lines.get('/paths', 1)}: `paths` must be a mapping")
    doc = _Doc(path, root, lines)
    root_ignore = doc.ignores(root, "")
    servers = [s["url"] for s in root.get("servers") or [] if isinstance(s, dict) and isinstance(s.get("url"), str)]
    spec_paths: dict[str, set[str]] = {}
    items: list[tuple[str, str, dict[str, Any]]] = []
    for template, raw_item in paths.items():
        item_pointer = f"/paths/{escape(template)}"
        item, _ = doc.resolve(raw_item, item_pointer)
        if isinstance(item, dict):
            spec_paths[template] = {m.upper() for m in METHODS if isinstance(item.get(m), dict)}
            items.append((template, item_pointer, item))
    exchanges: list[Exchange] = []
    for template, item_pointer, item in items:
        item_ignore = root_ignore | doc.ignores(item, item_pointer)
        shared = _parameters(doc, item.get("parameters"), f"{item_pointer}/parameters")
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            op_pointer = f"{item_pointer}/{method}"
            op_ignore = item_ignore | doc.ignores(op, op_pointer)
            op_servers = [s["url"] for s in op.get("servers") or [] if isinstance(s, dict) and "url" in s] or servers
            odoc = OperationDoc(template, method.upper(), op_pointer, doc.line(op_pointer),
                                parameters=shared | _parameters(doc, op.get("parameters"), f"{op_pointer}/parameters"),
                                servers=op_servers, spec_paths=spec_paths)
            raw_responses = op.get("responses")
            responses: dict[str, Any] = raw_responses if isinstance(raw_responses, dict) else {}
            built: list[tuple[ResponseDoc, dict[str, Any], frozenset[str]]] = []
            for key, raw_response in responses.items():
                rpointer = f"{op_pointer}/responses/{escape(str(key))}"
                response, _ = doc.resolve(raw_response, rpointer)
                if not isinstance(response, dict):
                    continue
                rdoc = ResponseDoc(str(key), rpointer, doc.line(rpointer), _headers(doc, response, rpointer),
                                   bool(response.get("content")), str(response.get("description") or ""),
                                   len(response.get("links") or {}))
                odoc.responses[rdoc.key] = rdoc
                built.append((rdoc, response, op_ignore | doc.ignores(raw_response, rpointer)
                              | doc.ignores(response, rpointer)))
            url = (op_servers[0].rstrip("/") if op_servers else "") + template
            for rdoc, _response, ignore in built:
                code = int(rdoc.key) if rdoc.key.isdigit() else 0
                headers = [(h.name, h.example or "") for h in rdoc.headers.values()]
                res = Response(code, headers, declares_content=rdoc.content,
                               required_headers=frozenset(k for k, h in rdoc.headers.items() if h.required))
                where = Location(uri=template, method=method.upper(), file=str(path), line=rdoc.line,
                                 pointer=rdoc.pointer)
                exchanges.append(Exchange(Request(method.upper(), url), res, "openapi", where, doc=odoc,
                                          response_doc=rdoc, ignore=ignore))
    for pointer, message in doc.problems:
        where = Location(file=str(path), line=doc.line(pointer), pointer=pointer)
        exchanges.append(Exchange(Request("GET", ""), Response(0), "openapi", where, problems=[message],
                                  ignore=root_ignore))
    return exchanges
