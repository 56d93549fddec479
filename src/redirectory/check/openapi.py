"""OpenAPI 3.0 / 3.1 / 3.2 input (YAML or JSON): every documented response of every operation
becomes a synthetic exchange (declared headers, `content`, the operation in `doc`), located at
its file:line.

`$ref`s are followed at any level (path item, operation, response, header, parameter, schema),
within the document and into other local files named relative to the file that holds the
`$ref` (`paths/users.yaml`, `../common.yaml#/components/responses/NotFound`). Cycles are cut.
A `$ref` that is a URL, that leaves the root document's directory tree, or that cannot be
followed becomes an OAS-REF-UNRESOLVED finding; a document whose paths yield no response to
check is an error (never a clean run). `x-redirectory-ignore: [ID, ...]` on the root, a path, an
operation or a response suppresses those checks there."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from redirectory.check.engine import UnknownCheck, validate_ids
from redirectory.check.lifecycle import example_text
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

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "query")  # query: 3.2
IGNORE_KEY = "x-redirectory-ignore"
VERSIONS = ("3.0", "3.1", "3.2")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # a scheme: http:, https:, urn:, file:...
_VARIABLE = re.compile(r"\{([^{}]+)\}")


class OpenAPIError(ValueError):
    """Not an OpenAPI 3.x document; the message names FILE:LINE."""


@dataclass
class _File:
    """One file of the document: its data and the line of every node."""

    path: Path  # as named (the root as given; others joined to the directory of the file that refers)
    name: str  # relative to the root document's directory (stable whatever the working directory)
    root: Any
    lines: dict[str, int]

    def line(self, pointer: str) -> int | None:
        while pointer not in self.lines and pointer:
            pointer = pointer.rsplit("/", 1)[0]
        return self.lines.get(pointer)

    def where(self, pointer: str) -> str:
        return f"{self.path}:{self.line(pointer) or 1}"

    def location(self, pointer: str, uri: str | None = None, method: str | None = None) -> Location:
        return Location(uri=uri, method=method, file=str(self.path), line=self.line(pointer), pointer=pointer,
                        name=self.name)


@dataclass
class _Doc:
    main: _File
    files: dict[Path, _File | None] = field(default_factory=dict)  # resolved path -> file (None: unreadable)
    problems: list[tuple[_File, str, str]] = field(default_factory=list)  # (file, pointer, message)

    def __post_init__(self) -> None:
        self.base = self.main.path.resolve().parent
        self.files[self.main.path.resolve()] = self.main

    def problem(self, f: _File, pointer: str, message: str) -> None:
        self.problems.append((f, pointer, f"{message} ({f.where(pointer)})"))

    def _file(self, ref: str, target: str, origin: _File, pointer: str) -> _File | None:
        """The file `target` names, relative to `origin`'s directory; None (and a problem) when it
        cannot be read or lies outside the root document's directory tree."""
        joined = origin.path.parent / unquote(target)
        real = joined.resolve()
        if not real.is_relative_to(self.base):
            self.problem(origin, pointer, f"$ref {ref!r} points outside the document's directory {self.base}: "
                         "refused (only files under it are read)")
            return None
        if real not in self.files:
            try:
                data, lines = load(joined)
            except SourceError as exc:
                self.problem(origin, pointer, f"$ref {ref!r} cannot be followed: {exc}")
                self.files[real] = None
                return None
            self.files[real] = _File(joined, PurePosixPath(real.relative_to(self.base)).as_posix(), data, lines)
        found = self.files[real]
        if found is None:
            self.problem(origin, pointer, f"$ref {ref!r} cannot be followed: {joined} could not be read")
        return found

    def resolve(self, value: Any, f: _File, pointer: str) -> tuple[Any, _File, str]:
        """Follow `$ref`s: (the value, the file and pointer it is written at), or (None, f, pointer)
        and a problem when one cannot be followed."""
        seen: set[tuple[Path, str]] = set()
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            ref = value["$ref"]
            target, _, fragment = ref.partition("#")
            if _URL.match(target):
                self.problem(f, pointer, f"$ref {ref!r} is a URL: redirectory check reads local files only "
                             "(save the file beside the document and refer to it by a relative path)")
                return None, f, pointer
            ref_file = self._file(ref, target, f, pointer) if target else f
            if ref_file is None:
                return None, f, pointer
            key = (ref_file.path.resolve(), fragment)
            if key in seen:
                self.problem(f, pointer, f"circular $ref {ref!r}")
                return None, f, pointer
            seen.add(key)
            node: Any = ref_file.root
            for token in fragment.split("/")[1:] if fragment else []:
                token = unquote(token).replace("~1", "/").replace("~0", "~")
                if isinstance(node, dict) and token in node:
                    node = node[token]
                elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                    node = node[int(token)]
                else:
                    self.problem(f, pointer, f"unresolvable $ref {ref!r}")
                    return None, f, pointer
            value, f, pointer = node, ref_file, fragment
        return value, f, pointer

    def ignores(self, obj: Any, f: _File, pointer: str) -> frozenset[str]:
        if not isinstance(obj, dict) or IGNORE_KEY not in obj:
            return frozenset()
        raw = obj[IGNORE_KEY]
        ids = [raw] if isinstance(raw, str) else raw
        where = f"{pointer}/{IGNORE_KEY}"
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise OpenAPIError(f"{f.where(where)}: {IGNORE_KEY} must be a check id or a list of check ids")
        try:
            return validate_ids(ids)
        except UnknownCheck as exc:
            raise OpenAPIError(f"{f.where(where)}: {exc}") from None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _example(header: dict[str, Any], text: Callable[[object], str | None] = _string) -> str | None:
    """The header's first example as text (`text` reads a value: by default strings only)."""
    schema = header.get("schema") if isinstance(header.get("schema"), dict) else {}
    for value in (header.get("example"), schema.get("example") if schema else None):
        if (found := text(value)) is not None:
            return found
    for examples in (header.get("examples"), schema.get("examples") if schema else None):
        if isinstance(examples, dict):  # header examples: {name: {value: ...}}
            for ex in examples.values():
                if isinstance(ex, dict) and (found := text(ex.get("value"))) is not None:
                    return found
        elif isinstance(examples, list):  # 3.1 schema examples: [value, ...]
            for ex in examples:
                if (found := text(ex)) is not None:
                    return found
    return None


def _headers(doc: _Doc, response: dict[str, Any], f: _File, pointer: str) -> dict[str, HeaderDoc]:
    out: dict[str, HeaderDoc] = {}
    headers, hf, hp = doc.resolve(response.get("headers"), f, f"{pointer}/headers")
    if not isinstance(headers, dict):
        return out
    for name, raw in headers.items():
        header, header_file, header_pointer = doc.resolve(raw, hf, f"{hp}/{escape(str(name))}")
        if not isinstance(header, dict):
            header, header_file, header_pointer = {}, hf, hp
        schema, _, _ = doc.resolve(header.get("schema"), header_file, f"{header_pointer}/schema")
        fmt = schema.get("format") if isinstance(schema, dict) else None
        # Deprecation and Sunset examples are read whatever YAML made of them (`true`, a date...)
        read = example_text if str(name).lower() in ("deprecation", "sunset") else _string
        out[str(name).lower()] = HeaderDoc(str(name), header.get("required") is True,
                                           fmt if isinstance(fmt, str) else None,
                                           _example({**header, "schema": schema if isinstance(schema, dict) else {}},
                                                    read))
    return out


def _parameters(doc: _Doc, raw: Any, f: _File, pointer: str) -> set[str]:
    names: set[str] = set()
    params, pf, pp = doc.resolve(raw, f, pointer)
    for i, item in enumerate(params if isinstance(params, list) else []):
        param, _, _ = doc.resolve(item, pf, f"{pp}/{i}")
        if isinstance(param, dict) and param.get("in") == "header" and isinstance(param.get("name"), str):
            names.add(param["name"].lower())
    return names


def _servers(raw: Any) -> list[str]:
    """Server URLs with their variables replaced by their defaults."""
    out = []
    for server in raw if isinstance(raw, list) else []:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        raw_vars = server.get("variables")
        variables: dict[str, Any] = raw_vars if isinstance(raw_vars, dict) else {}

        def default(match: re.Match[str], variables: dict[str, Any] = variables) -> str:
            var = variables.get(match.group(1))
            return str(var["default"]) if isinstance(var, dict) and "default" in var else match.group(0)

        out.append(_VARIABLE.sub(default, server["url"]))
    return out


def _operations(item: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(METHOD, raw operation, its pointer suffix) of a path item, 3.2's additionalOperations too."""
    ops = [(m.upper(), item[m], m) for m in METHODS if m in item]
    extra = item.get("additionalOperations")
    if isinstance(extra, dict):
        ops += [(str(m).upper(), op, f"additionalOperations/{escape(str(m))}") for m, op in extra.items()]
    return ops


def _check_version(main: _File) -> None:
    root = main.root
    if not isinstance(root, dict):
        raise OpenAPIError(f"{main.path}:1: not an OpenAPI document (expected a mapping with `openapi: 3.x`)")
    version = str(root.get("openapi", ""))
    if not any(version == v or version.startswith(v + ".") for v in VERSIONS):
        found = f"swagger {root['swagger']}" if "swagger" in root else (f"openapi {version}" if version else "none")
        raise OpenAPIError(f"{main.where('/openapi')}: not an OpenAPI 3.0/3.1/3.2 document "
                           f"(`openapi` version: {found}; expected 3.0.x, 3.1.x or 3.2.x)")


def load_openapi(path: Path) -> list[Exchange]:
    try:
        data, lines = load(path)
    except SourceError as exc:
        raise OpenAPIError(str(exc)) from None
    main = _File(path, path.name, data, lines)
    _check_version(main)
    root: dict[str, Any] = main.root
    paths = root.get("paths") or {}
    if not isinstance(paths, dict):
        raise OpenAPIError(f"{main.where('/paths')}: `paths` must be a mapping")
    doc = _Doc(main)
    root_ignore = doc.ignores(root, main, "")
    servers = _servers(root.get("servers"))
    spec_paths: dict[str, set[str]] = {}
    # (template, path item, its file and pointer, [(METHOD, operation, its file and pointer)])
    items: list[tuple[str, dict[str, Any], _File, str, list[tuple[str, dict[str, Any], _File, str]]]] = []
    for template, raw_item in paths.items():
        if not isinstance(template, str) or not template.startswith("/"):
            continue  # `x-...` extensions
        item, item_file, item_pointer = doc.resolve(raw_item, main, f"/paths/{escape(template)}")
        if not isinstance(item, dict):
            continue
        ops = []
        for method, raw_op, suffix in _operations(item):
            op, op_file, op_pointer = doc.resolve(raw_op, item_file, f"{item_pointer}/{suffix}")
            if isinstance(op, dict):
                ops.append((method, op, op_file, op_pointer))
        spec_paths[template] = {method for method, *_ in ops}
        items.append((template, item, item_file, item_pointer, ops))
    exchanges: list[Exchange] = []
    for template, item, item_file, item_pointer, ops in items:
        item_ignore = root_ignore | doc.ignores(paths[template], main, f"/paths/{escape(template)}") \
            | doc.ignores(item, item_file, item_pointer)
        shared = _parameters(doc, item.get("parameters"), item_file, f"{item_pointer}/parameters")
        item_servers = _servers(item.get("servers")) or servers
        for method, op, op_file, op_pointer in ops:
            op_ignore = item_ignore | doc.ignores(op, op_file, op_pointer)
            op_servers = _servers(op.get("servers")) or item_servers
            params = shared | _parameters(doc, op.get("parameters"), op_file, f"{op_pointer}/parameters")
            odoc = OperationDoc(template, method, op_pointer, op_file.line(op_pointer), parameters=params,
                                servers=op_servers, spec_paths=spec_paths, deprecated=op.get("deprecated") is True)
            if odoc.deprecated:
                odoc.deprecated_at = op_file.location(f"{op_pointer}/deprecated", template, method)
            responses, rfile, rbase = doc.resolve(op.get("responses"), op_file, f"{op_pointer}/responses")
            built: list[tuple[ResponseDoc, _File, frozenset[str]]] = []
            for key, raw_response in (responses.items() if isinstance(responses, dict) else []):
                rpointer = f"{rbase}/{escape(str(key))}"
                response, res_file, res_pointer = doc.resolve(raw_response, rfile, rpointer)
                if not isinstance(response, dict) or str(key).startswith("x-"):
                    continue
                rdoc = ResponseDoc(str(key), rpointer, rfile.line(rpointer),
                                   _headers(doc, response, res_file, res_pointer),
                                   bool(response.get("content")), str(response.get("description") or ""),
                                   len(response.get("links") or {}))
                odoc.responses[rdoc.key] = rdoc
                built.append((rdoc, rfile, op_ignore | doc.ignores(raw_response, rfile, rpointer)
                              | doc.ignores(response, res_file, res_pointer)))
            url = (op_servers[0].rstrip("/") if op_servers else "") + template
            for rdoc, res_file, ignore in built:
                code = int(rdoc.key) if rdoc.key.isdigit() else 0
                headers = [(h.name, h.example or "") for h in rdoc.headers.values()]
                res = Response(code, headers, declares_content=rdoc.content,
                               required_headers=frozenset(k for k, h in rdoc.headers.items() if h.required))
                exchanges.append(Exchange(Request(method, url), res, "openapi",
                                          res_file.location(rdoc.pointer, template, method),
                                          doc=odoc, response_doc=rdoc, ignore=ignore))
    templates = [t for t in paths if isinstance(t, str) and t.startswith("/")]
    if templates and not exchanges:
        first = f"; first problem: {doc.problems[0][2]}" if doc.problems else ""
        raise OpenAPIError(f"{main.where('/paths')}: `paths` documents {len(templates)} path(s) but no response "
                           f"could be checked (no operation with `responses` could be read){first}")
    for f, pointer, message in doc.problems:
        exchanges.append(Exchange(Request("GET", ""), Response(0), "openapi", f.location(pointer),
                                  problems=[message], ignore=root_ignore))
    return exchanges
