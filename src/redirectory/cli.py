"""`redirectory` command line (typer + rich). Every command that touches the table takes
`--database URL` (default `sqlite:///var/redirectory.db`, or `REDIRECTORY_DATABASE_URL`).

Exit status, the same for every command (docs/cli.md): 0 success; 1 the command ran and the answer
is "no" (an invalid rule file, an unreachable or missing database, no rule matched, findings at
`--fail-on`); 2 a usage error (an unknown option, a bad option value, a missing argument). Errors
are printed as `FILE:LINE: field: message` (rule problems) or one clear sentence, nothing changed;
never a traceback (set REDIRECTORY_DEBUG=1 to see one).

Read-only commands (`rules list|stats|test|export`, `keys list`) never create a database or a
directory: a missing one is an error naming its absolute path. Every command that opens a database
names it (password removed) in its output or with `--verbose`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from redirectory.gateway.config import DEFAULT_DATABASE_URL, DEFAULT_MAX_CONNECTIONS, GatewayConfig
from redirectory.logs import LogFormat, LogLevel
from redirectory.rules.formats import EXPORT_FORMATS, IMPORT_FORMATS, SERVER_EXPORT_FORMATS
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, RULE_STATUSES, TABLE, reason_phrase

if TYPE_CHECKING:
    from redirectory.store import OutsideEdit, Plan, Store

app = typer.Typer(
    name="redirectory",
    help="HTTP redirection for REST APIs: a redirect gateway, its rule table and tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,  # click's plain help: wraps at any width, never cuts an option name short
)
rules_app = typer.Typer(rich_markup_mode=None, help="Validate, apply, import, export, test, list and count rules.", no_args_is_help=True)
db_app = typer.Typer(rich_markup_mode=None, help="Database maintenance.", no_args_is_help=True)
keys_app = typer.Typer(rich_markup_mode=None, help="API keys for the admin API: create, list, revoke.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DatabaseOpt = Annotated[
    str,
    typer.Option(
        "--database",
        envvar="REDIRECTORY_DATABASE_URL",
        help="SQLAlchemy URL of the rule table, e.g. sqlite:///var/redirectory.db or postgresql://host/db.",
        show_default=True,
    ),
]


#: Exit statuses (see the module docstring).
EXIT_NO = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_NO) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    err.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    """A bad option value or argument: exit 2, as click does for its own usage errors."""
    fail(message, EXIT_USAGE)


def version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"redirectory {version('redirectory')}", highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    _version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                           callback=version_callback)] = False,
) -> None:
    """HTTP redirection for REST APIs: a redirect gateway, its rule table and tools."""


VERBOSE_PROBLEMS_HELP = "List every rule a repeated problem concerns (default: the count and the first 5)."


def print_problems(problems: list[Problem], strict: bool = False, verbose: bool = False) -> tuple[int, int]:
    """Print problems (a problem repeated on many rules as one line with a count, unless `verbose`:
    `rules/grouping.py`); (errors, warnings), counting every rule."""
    from redirectory.rules.grouping import ProblemGroup, group_problems

    errors = warnings = 0
    for item in (problems if verbose else group_problems(problems)):
        count = item.count if isinstance(item, ProblemGroup) else 1
        if item.is_error or strict:
            errors += count
        else:
            warnings += count
        err.print(item.format(), style="red" if item.is_error else "yellow", highlight=False, soft_wrap=True,
                  markup=False)
    return errors, warnings


def load_valid(path: Path, fmt: str | None = None, strict: bool = False, verbose: bool = False,
               include_root: Path | None = None) -> RuleSet:
    """Read, parse and validate a rule file; print problems; exit 1 on errors."""
    return read_valid(path, fmt, strict, verbose, include_root)[0]


def read_valid(path: Path, fmt: str | None = None, strict: bool = False,
               verbose: bool = False, include_root: Path | None = None) -> tuple[RuleSet, list[Problem]]:
    """`load_valid`, also returning the problems it printed (warnings only, since errors exit)."""
    from redirectory.rulefile import read_rule_file

    ruleset, problems = read_rule_file(path, fmt, include_root)
    errors, _ = print_problems(problems, strict, verbose)
    if errors:
        fail(f"{path}: {errors} problem(s); nothing was changed")
    return ruleset, problems


class SchemaProblem(Exception):
    """A read-only command met a database without redirectory's schema, or an older one."""


@contextmanager
def open_store(url: str, write: bool = False, migrate: bool = True) -> Iterator[Store]:
    """The store behind `url`. A read-only command (`write=False`) never creates a file or a
    directory and never migrates: a missing database or an old schema is an error. A writing one
    creates a new SQLite file (saying so on stderr) and migrates unless `migrate=False`."""
    from redirectory.store import Store, describe_database, sqlite_file
    from redirectory.store.store import lock_retry_seconds

    try:
        lock_retry_seconds()  # a bad REDIRECTORY_LOCK_TIMEOUT is refused before anything is opened
    except ValueError as exc:
        usage_error(str(exc))
    store = None
    try:
        path = sqlite_file(url)
        new = write and path is not None and not path.exists()
        store = Store.open(url, create=write)
        store.on_lock_wait = lambda waited: err.print(
            f"waiting: another writer (a `rules apply` or import, the admin API) holds the write lock of "
            f"{describe_database(url)}; {waited:.0f} s so far, giving up after {lock_retry_seconds():.0f} s",
            highlight=False, markup=False)
        if write and migrate:
            store.upgrade()
            if new:
                err.print(f"created {describe_database(url)}", highlight=False, markup=False)
        elif not write:
            current, head = store.schema_version()
            if current is None:
                raise SchemaProblem(f"{describe_database(url)} holds no redirectory table (is --database right?); "
                                    f"create one with `redirectory db upgrade --database {_redact(url)}`")
            if current != head:
                raise SchemaProblem(f"{describe_database(url)} has an older schema ({current}; this version needs "
                                    f"{head}): run `redirectory db upgrade --database {_redact(url)}`")
        yield store
    finally:
        if store is not None:
            store.close()


def _store_error(exc: Exception, url: str) -> NoReturn:
    """Say in our words what is wrong with --database (never the driver's text beyond its first
    line, never SQLAlchemy's links), and exit: 2 for a URL that is not one, 1 otherwise."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    from redirectory.store import DatabaseLocked, DatabaseNotFound, describe_database

    if isinstance(exc, DatabaseLocked):
        fail(f"--database: {describe_database(url)} is locked by another writer (a `rules apply` or import, the "
             f"admin API) that held it for {exc.waited:.0f} s; nothing was changed: try again when it is done")
    if isinstance(exc, DatabaseNotFound):
        fail(f"--database: no database at {exc.path}; this command never creates one. Check --database "
             "(or REDIRECTORY_DATABASE_URL): sqlite:///PATH is relative to the current directory, "
             "sqlite:////PATH is absolute. `redirectory rules apply FILE` or `redirectory db upgrade` creates it.")
    if isinstance(exc, SchemaProblem):
        fail(str(exc))
    if isinstance(exc, (ArgumentError, NoSuchModuleError)):
        usage_error(f"--database: '{_redact(url)}' is not a database URL this build supports "
                    "(sqlite:///PATH or postgresql://USER@HOST/DB)")
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "psycopg":
        fail(f"--database: {describe_database(url)} needs the PostgreSQL driver, an extra: install it with "
             "pip install '/path/to/redirectory[postgres]' (or pip install 'psycopg[binary]')")
    if isinstance(exc, ValueError):
        usage_error(f"--database: {exc}")
    if isinstance(exc, OSError):
        fail(f"--database: cannot open {describe_database(url)}: {exc.strerror or exc}")
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None and str(exc.orig).strip() else \
            type(exc.orig or exc).__name__
        fail(f"--database: cannot use {describe_database(url)}: {reason}")
    if isinstance(exc, SQLAlchemyError):
        fail(f"--database: cannot use {describe_database(url)}: {type(exc).__name__}")
    raise exc


def _redact(url: str) -> str:
    from redirectory.store import redact_url

    return redact_url(url)


def _where(url: str) -> str:
    from redirectory.store import describe_database

    return describe_database(url)


# -- serve ------------------------------------------------------------------------------------
FORMAT_HELP = f"{', '.join(IMPORT_FORMATS[:-1])} or {IMPORT_FORMATS[-1]} (default: from the file name)."
#: The actors of declarative syncs from a rule file, as the change log records them.
APPLY_ACTORS = ("rules apply", "serve --rules")


@app.command()
def serve(
    rules: Annotated[Path | None, typer.Option("--rules", envvar="REDIRECTORY_RULES", help="Apply this rule file at start (as `rules apply`).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", envvar="REDIRECTORY_FORMAT", help="Format of --rules: " + FORMAT_HELP)] = None,
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
    host: Annotated[str, typer.Option(envvar="REDIRECTORY_HOST", help="Address for redirects.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="REDIRECTORY_PORT", help="Port for redirects.", min=1, max=65535)] = 8000,
    admin_host: Annotated[str, typer.Option(envvar="REDIRECTORY_ADMIN_HOST", help="Address of the admin listener (health, admin API).")] = "127.0.0.1",
    admin_port: Annotated[int, typer.Option(envvar="REDIRECTORY_ADMIN_PORT", help="Port of the admin listener.", min=1, max=65535)] = 8001,
    admin_tls_cert: Annotated[Path | None, typer.Option(envvar="REDIRECTORY_ADMIN_TLS_CERT", help="PEM certificate (chain) for the admin listener: serves it over HTTPS, TLS 1.2+.")] = None,
    admin_tls_key: Annotated[Path | None, typer.Option(envvar="REDIRECTORY_ADMIN_TLS_KEY", help="PEM private key of --admin-tls-cert.")] = None,
    admin_plain_http: Annotated[bool, typer.Option("--admin-plain-http", envvar="REDIRECTORY_ADMIN_PLAIN_HTTP", help="Allow plain HTTP on a non-loopback --admin-host (a TLS-terminating proxy encrypts in front of it).")] = False,
    workers: Annotated[int, typer.Option(envvar="REDIRECTORY_WORKERS", help="Gateway worker processes.", min=1, max=64)] = 1,
    public_url: Annotated[str | None, typer.Option(envvar="REDIRECTORY_PUBLIC_URL", help="Origin clients use (e.g. https://api.example.com): makes Location absolute.")] = None,
    forwarded_allow_ips: Annotated[str, typer.Option(envvar="REDIRECTORY_FORWARDED_ALLOW_IPS", help="Comma-separated proxy IPs/CIDRs whose X-Forwarded-Proto/Host are trusted ('*' = any).")] = "",
    server: Annotated[str, typer.Option(envvar="REDIRECTORY_SERVER", help="HTTP server: httptools (default: a lean HTTP/1.1 server on uvloop + httptools, fastest by benchmark), uvicorn or granian (ASGI).")] = "httptools",
    default_cache: Annotated[int, typer.Option(envvar="REDIRECTORY_DEFAULT_CACHE", help="Cache-Control max-age for 301/308 rules without `cache`.", min=0)] = DEFAULT_PERMANENT_MAX_AGE,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", envvar="REDIRECTORY_NO_MIGRATE", help="Do not run database migrations at start.")] = False,
    max_connections: Annotated[int, typer.Option("--max-connections", envvar="REDIRECTORY_MAX_CONNECTIONS", min=1, max=1_000_000, help="Connections each gateway worker holds at most (--server httptools); one beyond is closed at once.")] = DEFAULT_MAX_CONNECTIONS,
    access_log: Annotated[bool, typer.Option("--access-log", envvar="REDIRECTORY_ACCESS_LOG", help="Log one line per request to stderr (method, path without query, status, rule id, duration in ms, request id).")] = False,
    access_log_query: Annotated[bool, typer.Option("--access-log-query", envvar="REDIRECTORY_ACCESS_LOG_QUERY", help="Show query strings in the access log (off by default: they may hold tokens).")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", envvar="REDIRECTORY_LOG_FORMAT", help="Format of every log line: text (LEVEL: message) or json (one object per line).")] = LogFormat.text,
    log_level: Annotated[LogLevel, typer.Option("--log-level", envvar="REDIRECTORY_LOG_LEVEL", help="Least severe log lines written (access lines follow --access-log).")] = LogLevel.info,
    metrics: Annotated[bool, typer.Option("--metrics/--no-metrics", envvar="REDIRECTORY_METRICS", help="Serve Prometheus metrics at GET /metrics on the admin listener, summed over every worker.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", envvar="REDIRECTORY_VERBOSE", help=f"List every change --rules makes (default: the first {20} of each kind).")] = False,
) -> None:
    """Run the redirect gateway (and the admin listener beside it).

    Every check runs before anything is written: the options, the --rules file and both
    listeners (bound first); a start that fails changes nothing.
    """
    from redirectory.forwarded import TrustedProxies, origin_of
    from redirectory.gateway.tls import check_admin_transport
    from redirectory.serve import ServeError, admin_url, bind_listeners, run

    _serve_messages(log_format.value, log_level.value)

    cert = str(admin_tls_cert) if admin_tls_cert else None
    key = str(admin_tls_key) if admin_tls_key else None
    try:
        check_admin_transport(admin_host, cert, key, admin_plain_http)
    except ValueError as exc:
        usage_error(str(exc))

    if public_url:
        try:
            origin_of(public_url)
        except ValueError as exc:
            usage_error(f"--public-url: {exc}")
    proxies = tuple(p.strip() for p in forwarded_allow_ips.split(",") if p.strip())
    try:
        TrustedProxies(proxies)
    except ValueError as exc:
        usage_error(f"--forwarded-allow-ips: {exc} (give IP addresses or networks such as 10.0.0.0/8, or '*')")
    from redirectory.store.retention import Retention

    try:
        Retention.from_env()  # the gateways prune the history by it: a bad value is refused at start
    except ValueError as exc:
        usage_error(str(exc))
    ruleset = load_valid(rules, fmt) if rules else None
    config = GatewayConfig(
        database=database,
        host=host,
        port=port,
        admin_host=admin_host,
        admin_port=admin_port,
        admin_tls_cert=cert,
        admin_tls_key=key,
        workers=workers,
        server=server,
        public_url=public_url,
        forwarded_allow_ips=proxies,
        default_permanent_max_age=default_cache,
        access_log=access_log,
        access_log_query=access_log_query,
        log_format=log_format.value,
        log_level=log_level.value,
        metrics=metrics,
        max_connections=max_connections,
    )
    if server != "httptools" and max_connections != DEFAULT_MAX_CONNECTIONS:
        usage_error("--max-connections: applies to --server httptools only (uvicorn and granian have their own)")
    try:
        listeners = bind_listeners(config)
    except ServeError as exc:
        fail(str(exc))
    try:
        with open_store(database, write=True, migrate=not no_migrate) as store:
            err.print(f"database: {_where(database)}", highlight=False, markup=False)
            if ruleset is not None:
                _apply_file(store, ruleset, str(rules), "serve --rules", verbose, console=err)
            table_size = store.rule_count()
    except typer.Exit:
        listeners.close()
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to a clear message
        listeners.close()
        _store_error(exc, database)
    err.print(f"redirects on http://{host}:{port}  admin on {admin_url(config)}/healthz", highlight=False)
    try:
        run(config, listeners, rules=table_size)
    except ServeError as exc:
        fail(str(exc))


def _serve_messages(log_format: str, log_level: str) -> None:
    """`serve`'s messages on stderr in --log-format from its first one: with `json`, the lines this
    command prints from now on (the database, the --rules plan, errors) become log records too."""
    global err
    from redirectory import logs

    logs.configure(log_format, log_level)
    if log_format == "json":
        import logging
        from typing import IO, cast

        writer = cast(IO[str], logs.LineWriter(logging.getLogger("redirectory.serve")))
        err = Console(file=writer, soft_wrap=True, width=1000)


def _apply_file(store: Store, ruleset: RuleSet, name: str, actor: str, verbose: bool,
                console: Console, dry_run: bool = False) -> None:
    """Print the plan (with the edits made outside the file it would undo), then apply it."""
    if dry_run:
        plan = store.plan(ruleset)
        _print_plan(plan, verbose, console)
        _print_outside_edits(store.edits_since_apply(plan, APPLY_ACTORS), console)
        console.print(f"dry run: {plan.summary()}; nothing was changed", highlight=False)
        return
    plan, revision = store.apply(ruleset, actor=actor)  # the plan is made once, inside the write
    edits = [] if plan.empty else store.edits_since_apply(plan, APPLY_ACTORS, before=revision)
    _print_plan(plan, verbose, console)
    _print_outside_edits(edits, console, done=True)
    if plan.empty:
        console.print(f"no changes (revision {revision}): {name}", highlight=False, markup=False)
    else:
        console.print(f"applied: {plan.summary()} (revision {revision}): {name}", highlight=False, markup=False)


def _print_outside_edits(edits: list[OutsideEdit], console: Console, done: bool = False) -> None:
    if not edits:
        return
    since = f"since the last apply of a rule file (revision {edits[0].since})" if edits[0].since else \
        "(no apply of a rule file in the history kept)"
    verb = "undid" if done else "undoes"
    console.print(Text(f"warning: this apply {verb} {len(edits)} edit(s) made outside the rule file {since}:",
                       style="yellow"), highlight=False)
    for edit in edits[:PLAN_LINES]:
        what = "added" if edit.op == "add" else "changed"
        console.print(f"  {_describe(edit.rule)}  (id {edit.rule.id}): {what} by {edit.actor} at "
                      f"{_when(edit.at)} (revision {edit.revision})", highlight=False, markup=False)
    if len(edits) > PLAN_LINES:
        console.print(f"  ... and {len(edits) - PLAN_LINES} more", highlight=False, markup=False)
    console.print("  (to keep such edits, put them in the rule file, or use `rules import` / the admin API "
                  "instead of apply)", highlight=False, markup=False)


# -- rules validate / apply / import / export ----------------------------------------------------
IncludeRootOpt = Annotated[Path | None, typer.Option(
    "--include-root", help="nginx and Apache: the directory their relative `include`s / `Include`s (and "
    "those under /etc/nginx/, /etc/apache2/ or /etc/httpd/) are read from, as nginx's configuration "
    "directory or Apache's ServerRoot; default: the directory of FILE.")]


@rules_app.command("validate")
def rules_validate(
    file: Annotated[Path, typer.Argument(help="Rule file (.yaml, .yml, .json or .csv).")],
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    fmt: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    database: Annotated[str | None, typer.Option("--database", hidden=True,
                                                 help="Accepted like every rules command; validate never opens it.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_PROBLEMS_HELP)] = False,
    include_root: IncludeRootOpt = None,
) -> None:
    """Check a rule file.

    Exit 0 when valid, else print every problem as FILE:LINE: field: message and exit 1. A problem
    found on more than 3 rules is printed once, with its count and the first lines (--verbose: all).
    """
    from redirectory.rulefile import read_rule_file

    ruleset, problems = read_rule_file(file, fmt, include_root)
    errors, warnings = print_problems(problems, strict, verbose)
    if errors:
        err.print(f"{file}: {errors} error(s), {warnings} warning(s)", style="red", highlight=False)
        raise typer.Exit(1)
    out.print(f"{file}: {len(ruleset.rules)} rule(s) valid" + (f", {warnings} warning(s)" if warnings else ""),
              highlight=False)


@rules_app.command("apply")
def rules_apply(
    file: Annotated[Path, typer.Argument(help="Rule file: the table becomes exactly this file.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan, change nothing.")] = False,
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=f"List every planned change (default: the first {20} of each kind) and every rule a repeated problem concerns.")] = False,
    fmt: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP)] = None,
) -> None:
    """Make the table exactly a rule file (declarative sync).

    Print the plan (added / changed / removed), then apply it in one transaction.

    The plan also names the rules it changes or removes that were edited outside the file (admin
    API, `rules import`) since the file was last applied.
    """
    from redirectory.store import diff, sqlite_file

    ruleset = load_valid(file, fmt, strict, verbose)
    missing = sqlite_file(database)
    if dry_run and missing is not None and not missing.exists():
        out.print(f"database: {_where(database)} does not exist yet: the plan is against an empty table",
                  highlight=False, markup=False)
        plan = diff([], ruleset, ())
        _print_plan(plan, verbose, out)
        out.print(f"dry run: {plan.summary()}; nothing was changed", highlight=False)
        return
    try:
        with open_store(database, write=not dry_run) as store:
            out.print(f"database: {_where(database)}", highlight=False, markup=False)
            _apply_file(store, ruleset, str(file), APPLY_ACTORS[0], verbose, out, dry_run=dry_run)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)


PLAN_LINES = 20


def _print_plan(plan: Plan, verbose: bool, console: Console) -> None:
    """Each added / changed / removed rule (the first PLAN_LINES of each kind unless verbose)."""
    limit = None if verbose else PLAN_LINES

    def more(items: list[Any], what: str) -> None:
        if limit is not None and len(items) > limit:
            console.print(f"  ... and {len(items) - limit} more {what} (--verbose lists them all)", highlight=False)

    for rule in plan.added[:limit]:
        console.print(Text.assemble(("+ add    ", "green"), _describe(rule)), highlight=False)
    more(plan.added, "to add")
    for before, after in plan.changed[:limit]:
        console.print(Text.assemble(("~ change ", "yellow"), _describe(after)), highlight=False)
        for name, old, new in _diff(before, after):
            console.print(f"           {name}: {old} -> {new}", highlight=False, markup=False)
    more(plan.changed, "to change")
    for rule in plan.removed[:limit]:
        console.print(Text.assemble(("- remove ", "red"), _describe(rule)), highlight=False)
    more(plan.removed, "to remove")
    if plan.allowed_hosts:
        console.print(Text.assemble(("~ allowed_hosts ", "yellow"),
                                    f"{list(plan.allowed_hosts[0])} -> {list(plan.allowed_hosts[1])}"),
                      highlight=False)


def _describe(rule: Rule) -> str:
    methods = f" [{', '.join(rule.methods)}]" if rule.methods else ""
    return f"{rule.from_text}{methods} -> {rule.status} {rule.to or '(not redirected)'}"


def _diff(before: Rule, after: Rule) -> list[tuple[str, object, object]]:
    a, b = before.to_dict(), after.to_dict()
    return [(k, a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


@rules_app.command("import")
def rules_import(
    file: Annotated[Path, typer.Argument(help="Rule file, or nginx / Apache / Netlify redirect configuration, whose rules are added to the table.")],
    fmt: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP + " A .conf file needs --format.")] = None,
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_PROBLEMS_HELP)] = False,
    include_root: IncludeRootOpt = None,
) -> None:
    """Add a file's rules to the table (all or nothing).

    Not a sync: the rules already in the table stay. A progress bar shows on big files.

    nginx, Apache and Netlify redirects are converted (302 becomes 307); what cannot be
    converted is skipped with a warning naming its line (see docs/rules.md).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from redirectory.store import ChangeRefused

    incoming, printed = read_valid(file, fmt, strict, verbose, include_root)
    # What the import adds to the table is validated inside the write, against the table as it is
    # then (store/guard.py); the file's own problems were printed already.
    known = {(p.code, p.line, p.message) for p in printed}

    def report(found: list[Problem]) -> int:
        return print_problems([p for p in found if (p.code, p.line, p.message) not in known], strict, verbose)[0]

    try:
        with open_store(database, write=True) as store:
            out.print(f"database: {_where(database)}", highlight=False, markup=False)
            current_hosts = store.allowed_hosts()
            hosts = tuple(dict.fromkeys(current_hosts + incoming.allowed_hosts))
            new_hosts = hosts if hosts != current_hosts else None
            shifted = incoming.rules
            if strict and report(store.check_add(shifted, allowed_hosts=new_hosts, source=str(file))):
                fail(f"{file}: problem(s) with the rules already in the table; nothing was changed")
            found: list[Problem] = []
            try:
                with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                              console=err, transient=True, disable=len(shifted) < 1000) as progress:
                    task = progress.add_task("import", total=len(shifted))
                    revision = store.add(shifted, actor="rules import",
                                         progress=lambda n: progress.update(task, completed=n),
                                         allowed_hosts=new_hosts, problems=found, source=str(file))
            except ChangeRefused as exc:
                errors = report(exc.problems)
                fail(f"{file}: {errors} problem(s) with the rules already in the table; nothing was changed")
            if not strict:
                report(found)
            out.print(f"imported {len(shifted)} rule(s) (revision {revision})", highlight=False)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)


_EXPORT_HELP = f"{', '.join(EXPORT_FORMATS[:-1])} or {EXPORT_FORMATS[-1]}."


@rules_app.command("export")
def rules_export(
    fmt: Annotated[str, typer.Option("--format", help=_EXPORT_HELP)] = "yaml",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (nginx: a directory for redirectory-map.conf and redirectory-return.conf; apache, netlify: a file, or a directory for redirectory-apache.conf or _redirects).")] = None,
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say which database and revision (on stderr).")] = False,
) -> None:
    """Write the table as a rule file or server configuration.

    yaml, json or csv; nginx: a `map` include plus its `return` snippet; apache: a mod_rewrite
    snippet for a VirtualHost; netlify: a `_redirects` file. Each rule the server cannot express
    is named on stderr (exit 0).
    """

    if fmt not in EXPORT_FORMATS:
        usage_error(f"--format: '{fmt}' is not one of {', '.join(EXPORT_FORMATS)}")
    if fmt not in SERVER_EXPORT_FORMATS:
        _export_streamed(fmt, output, database, verbose)
        return
    try:
        with open_store(database) as store:
            revision, ruleset = store.load()
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)
    if verbose or output is not None:
        err.print(f"exporting {len(ruleset.rules)} rule(s) from {_where(database)} (revision {revision})",
                  highlight=False, markup=False)
    _write_table(ruleset, fmt, output)


def _write_table(ruleset: RuleSet, fmt: str, output: Path | None) -> None:
    """`ruleset` as a rule file (yaml, json, csv) or server configuration, to `output` or stdout."""
    from redirectory.rules import export

    if fmt in ("apache", "netlify"):
        _write_server_file(ruleset, fmt, output)
        return
    if fmt == "nginx":
        if output is None:
            sys.stdout.write(f"# ---- {export.MAP_FILE} (include inside http {{}}) ----\n")
            return_conf, skipped = export.write_nginx(ruleset, sys.stdout)
            sys.stdout.write(f"\n# ---- {export.RETURN_FILE} (include inside server {{}}) ----\n")
            sys.stdout.write(return_conf)
        else:
            try:
                output.mkdir(parents=True, exist_ok=True)
                with _replacing(output / export.MAP_FILE) as stream:
                    return_conf, skipped = export.write_nginx(ruleset, stream)
                (output / export.RETURN_FILE).write_text(return_conf, encoding="utf-8")
            except OSError as exc:
                fail(f"--output: cannot write to {output}: {exc.strerror or exc}")
        for p in skipped:
            err.print(p.format("nginx export"), style="yellow", highlight=False, markup=False)
        if output is not None:
            err.print(f"wrote {output / export.MAP_FILE} and {output / export.RETURN_FILE}", highlight=False,
                      markup=False)
        return
    try:  # written a few thousand rules at a time (rules/export.py), never the whole text at once
        if output is None:
            export.write(ruleset, fmt, sys.stdout)  # type: ignore[arg-type]
        else:
            with _replacing(output) as stream:
                export.write(ruleset, fmt, stream)  # type: ignore[arg-type]
    except ValueError as exc:  # CSV cannot hold this table (checked before anything is written)
        fail(f"--format {fmt}: {exc}")
    except OSError as exc:
        fail(f"--output: cannot write {output}: {exc.strerror or exc}")


def _write_server_file(ruleset: RuleSet, fmt: str, output: Path | None) -> None:
    """The Apache snippet or Netlify `_redirects` file (one text each), to `output` (a file, or a
    directory for its usual name) or stdout; each rule left out named on stderr."""
    from redirectory.rules import export_apache, export_netlify

    if fmt == "apache":
        done = export_apache.apache(ruleset)
        text, skipped, name = done.conf, done.skipped, export_apache.APACHE_FILE
    else:
        result = export_netlify.netlify(ruleset)
        text, skipped, name = result.text, result.skipped, export_netlify.NETLIFY_FILE
    if output is None:
        sys.stdout.write(text)
    else:
        target = output / name if output.is_dir() else output
        try:
            with _replacing(target) as stream:
                stream.write(text)
        except OSError as exc:
            fail(f"--output: cannot write {target}: {exc.strerror or exc}")
    for p in skipped:
        err.print(p.format(f"{fmt} export"), style="yellow", highlight=False, markup=False)
    if output is not None:
        err.print(f"wrote {target}", highlight=False, markup=False)


@rules_app.command("convert")
def rules_convert(
    file: Annotated[Path, typer.Argument(help="Rule file, or nginx / Apache / Netlify / Vercel redirect configuration.")],
    from_fmt: Annotated[str | None, typer.Option("--from", help=FORMAT_HELP + " A .conf file needs --from.")] = None,
    to_fmt: Annotated[str, typer.Option("--to", help=_EXPORT_HELP)] = "yaml",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (nginx: a directory); default: standard output.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_PROBLEMS_HELP)] = False,
    include_root: IncludeRootOpt = None,
) -> None:
    """Convert a file to another format, without a database.

    The same conversion and validation as `rules import`: warnings on stderr, the converted table
    on stdout (or -o). Exit 1, writing nothing, when the file has errors.
    """
    if to_fmt not in EXPORT_FORMATS:
        usage_error(f"--to: '{to_fmt}' is not one of {', '.join(EXPORT_FORMATS)}")
    ruleset = load_valid(file, from_fmt, strict, verbose, include_root)
    _write_table(ruleset, to_fmt, output)
    if output is not None or verbose:
        err.print(f"converted {len(ruleset.rules)} rule(s) from {file}", highlight=False, markup=False)


def _export_streamed(fmt: str, output: Path | None, database: str, verbose: bool) -> None:
    """A rule file straight from one snapshot of the store, a few thousand rules at a time: the
    table is never held whole (a million rules: tens of MB instead of ~600)."""
    from redirectory.rules import export

    def rules(reader: Any) -> Iterator[Rule]:
        while batch := reader.fetch(5000):
            yield from batch

    try:
        with open_store(database) as store:
            reader = store.table_reader()
            revision = reader.open()
            try:
                if verbose or output is not None:
                    err.print(f"exporting {store.rule_count():,} rule(s) from {_where(database)} (revision {revision})",
                              highlight=False, markup=False)
                if output is None:
                    export.write(rules(reader), fmt, sys.stdout, allowed_hosts=reader.allowed_hosts)  # type: ignore[arg-type]
                else:
                    with _replacing(output) as stream:
                        export.write(rules(reader), fmt, stream, allowed_hosts=reader.allowed_hosts)  # type: ignore[arg-type]
            finally:
                reader.close()
    except typer.Exit:
        raise
    except ValueError as exc:  # CSV cannot hold this table: the output file was left as it was
        fail(f"--format {fmt}: {exc}")
    except OSError as exc:
        fail(f"--output: cannot write {output}: {exc.strerror or exc}" if output is not None
             else f"cannot write the export to standard output: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)


@contextmanager
def _replacing(path: Path) -> Iterator[Any]:
    """A text stream to a temporary file beside `path`, which replaces `path` only once fully written:
    a failed export leaves the old file as it was."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would have made it, not mkstemp's 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- rules test / list / stats ------------------------------------------------------------------
@rules_app.command("test")
def rules_test(
    url: Annotated[str, typer.Argument(help="The request URL, e.g. http://api.example.com/api/v1/users?x=1 or /api/v1/users.")],
    method: Annotated[str, typer.Option("--method", "-X", help="Request method.")] = "GET",
    header: Annotated[list[str] | None, typer.Option("--header", "-H", help="Request header 'Name: value' (Host, X-Forwarded-Proto/Host).")] = None,
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
    rules: Annotated[Path | None, typer.Option("--rules", help="Test against this rule file instead of the database.")] = None,
    public_url: Annotated[str | None, typer.Option(help="As `serve --public-url`.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Format of --rules: " + FORMAT_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    allow_no_match: Annotated[bool, typer.Option("--allow-no-match", help="Exit 0 also when no rule matches.")] = False,
    at: Annotated[str | None, typer.Option("--at", help="Answer as at this time (ISO 8601, e.g. 2027-03-01T00:00:00Z; no zone = UTC): windows and phases.")] = None,
) -> None:
    """Explain which rule answers a request, and the response.

    Which rule matches and why (or that none does), and the exact response.

    Exit 0 when a rule matches, 1 when none does (0 with --allow-no-match), 2 for a bad URL or option.
    """
    from redirectory.rules.engine import DecisionOutcome
    from redirectory.rules.resolution import resolve

    headers: dict[str, str] = {}
    for item in header or []:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            usage_error(f"--header: '{item}' is not 'Name: value'")
        headers[name.strip().lower()] = value.strip()
    try:
        resolve(RuleSet(), url, method, headers, public_url=public_url)  # the URL and options alone
    except ValueError as exc:
        usage_error(str(exc))
    when: datetime | None = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at[:-1] + "+00:00" if at.endswith(("Z", "z")) else at)
        except ValueError:
            usage_error(f"--at: {at!r} is not an ISO 8601 time such as 2027-03-01T00:00:00Z")
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    if rules is not None:
        ruleset = load_valid(rules, fmt)
        where = str(rules)
    else:
        if fmt is not None:
            usage_error("--format: describes a --rules file; give --rules too (or drop --format)")
        try:
            with open_store(database) as store:
                revision, ruleset = store.load()
        except Exception as exc:  # noqa: BLE001
            _store_error(exc, database)
        where = f"{_where(database)}, revision {revision}"
    resolution = resolve(ruleset, url, method, headers, public_url=public_url, at=when)
    engine, request, explanation = resolution.engine, resolution.request, resolution.explanation
    decision = explanation.decision
    response = decision.response
    sem = TABLE.get(response.status)
    reason = reason_phrase(response.status)
    wire = [f"HTTP/1.1 {response.status} {reason}"]
    wire += [f"{k}: {v}" for k, v in response.headers]
    wire.append(f"date: {format_datetime(datetime.now(UTC), usegmt=True)}")
    body = resolution.body
    if as_json:
        sys.stdout.write(json.dumps(resolution.to_json(), indent=2) + "\n")
        if decision.rule is None and not allow_no_match:
            raise typer.Exit(EXIT_NO)
        return
    out.print(f"[bold]{request.method} {url}[/bold]  (table: {where})", highlight=False)
    if decision.path is not None:
        out.print(f"normalised path: {decision.path}", highlight=False, markup=False)
    if decision.rule is not None:
        rule = decision.rule
        out.print(f"[green]matched[/green] {_describe(rule)}" + (f"  (line {rule.line})" if rule.line else "")
                  + (f"  id {rule.id}" if rule.id else ""), highlight=False)
        out.print(f"why: {_why(decision.rule, engine)}", highlight=False, markup=False)
        if decision.values:
            out.print("placeholders: " + ", ".join(f"{k}={v!r}" for k, v in decision.values.items()),
                      highlight=False, markup=False)
        if sem:
            out.print(f"meaning: {sem.reason} ({sem.rfc}): {sem.note}", highlight=False, markup=False)
    elif decision.outcome is DecisionOutcome.NO_RULE:
        out.print("[red]no rule matches[/red]", highlight=False)
    for c in explanation.considered:
        if c.verdict != "chosen":
            out.print(f"  also considered {_describe(c.rule)}: {c.verdict}", highlight=False, markup=False)
    out.print("response:", highlight=False)
    out.print("\n".join("  " + line for line in wire), highlight=False, markup=False)
    if body:
        out.print("\n  " + body.decode(), highlight=False, markup=False)
    if decision.rule is None and not allow_no_match:
        raise typer.Exit(EXIT_NO)


def _why(rule: Rule, engine: object) -> str:
    from redirectory.rules.patterns import is_host_regex, parse_source

    if rule.source_regex is not None and is_host_regex(rule.source_regex):
        return ("host-specific regex rule, matched against //host/path (tried after the host's exact and "
                "pattern rules, before any-host rules)")
    if rule.source_regex is not None:
        return "regex rule (tried after every exact and pattern rule), pattern matched"
    pattern = parse_source(rule.source or "/")
    scope = f"host {pattern.host}" if pattern.host else "any host"
    if pattern.is_exact:
        kind = "exact path"
    else:
        kind = f"pattern with {pattern.literal_count} literal segment(s)" + (
            " and a {name:path} tail" if pattern.tail else "")
    extra = f", priority {rule.priority}" if rule.priority else ""
    accepted = "method, window and query conditions" if rule.has_query_conditions else "method and window"
    return f"{kind}, {scope}{extra}; {accepted} accepted"


def _rule_json(rule: Rule | None) -> dict[str, object] | None:
    from redirectory.rules.resolution import rule_json

    return rule_json(rule)


def print_table(title: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """A table whose cells are never split (ids, patterns): as columns when every row fits the
    terminal, else as one block per row (the first column, then `column: value` lines)."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    if sum(widths) + 3 * len(columns) + 1 <= out.width:
        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        out.print(table, markup=False, highlight=False)
        return
    out.print(title, markup=False, highlight=False)
    label = max(len(c) for c in columns[1:])
    for row in rows:
        out.print(Text(row[0], style="bold"), highlight=False, soft_wrap=True)
        for col, value in zip(columns[1:], row[1:], strict=True):
            out.print(f"  {col:<{label}}  {value}", markup=False, highlight=False, soft_wrap=True)


@rules_app.command("list")
def rules_list(
    host: Annotated[str | None, typer.Option(help="Only rules for this host (from: //host/...).")] = None,
    status: Annotated[int | None, typer.Option(help="Only rules with this status.")] = None,
    search: Annotated[str | None, typer.Option(help="Text to look for in from/to/note.")] = None,
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the rules in the table.

    Their id, from, status, to, methods and note.
    """
    if status is not None and status not in RULE_STATUSES:
        usage_error(f"--status: {status} is not a rule status ({', '.join(map(str, RULE_STATUSES))})")
    try:
        with open_store(database) as store:
            found = store.list_rules(host=host, status=status, search=search)
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)
    if as_json:
        sys.stdout.write(json.dumps([_rule_json(r) for r in found], indent=2) + "\n")
        return
    rows = [(r.id or "-", r.from_text, str(r.status), r.to, ", ".join(r.methods) if r.methods else "*", r.note or "")
            for r in found]
    print_table(f"{len(found)} rule(s) in {_where(database)}", ("id", "from", "status", "to", "methods", "note"), rows)


@rules_app.command("stats")
def rules_stats(
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
    limit: Annotated[int, typer.Option(help="How many unmatched paths to show.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Hits and last hit per rule, and the top unmatched paths."""
    try:
        with open_store(database) as store:
            stats = store.stats(limit_unmatched=limit)
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)
    if as_json:
        sys.stdout.write(json.dumps(_jsonable(stats), indent=2, default=str) + "\n")
        return
    print_table(f"hits per rule in {_where(database)}", ("id", "from", "status", "to", "hits", "last hit"),
                [(r.rule_id, r.from_text, str(r.status), r.to, str(r.hits), _when(r.last_hit)) for r in stats.rules])
    print_table("top unmatched paths", ("path", "hits", "last hit"),
                [(p.path, str(p.hits), _when(p.last_hit)) for p in stats.unmatched])


def _jsonable(obj: object) -> object:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return obj


# -- keys -------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for (1-200 printable characters), e.g. 'deploy bot'.")],
    scope: Annotated[str, typer.Option("--scope", help="read, write or admin (admin includes write, write includes read).")],
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
) -> None:
    """Create an API key and print its secret once.

    Only its hash is stored.
    """
    from redirectory.store.keys import validate_name, validate_scope

    try:
        validate_scope(scope)
    except ValueError as exc:
        usage_error(f"--scope: {exc}")
    try:
        validate_name(name)
    except ValueError as exc:
        usage_error(str(exc))
    try:
        with open_store(database, write=True) as store:
            key, secret = store.create_key(name, scope)
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)
    err.print(
        f"created key {key.id} (scope {key.scope}) '{key.name}' in {_where(database)}: its secret (on standard "
        "output) will not be shown again; store it safely.",
        highlight=False,
        markup=False,
    )
    sys.stdout.write(secret + "\n")


@keys_app.command("list")
def keys_list(
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the API keys, newest first (never their secrets)."""
    try:
        with open_store(database) as store:
            found = store.list_keys()
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)
    if as_json:
        sys.stdout.write(json.dumps([k.to_dict() for k in found], indent=2) + "\n")
        return
    print_table(f"{len(found)} key(s) in {_where(database)}",
                ("id", "name", "scope", "prefix", "created", "last used", "revoked"),
                [(k.id, k.name, k.scope, k.prefix + "…", _when(k.created_at), _when(k.last_used_at),
                  _when(k.revoked_at)) for k in found])


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")],
    database: DatabaseOpt = DEFAULT_DATABASE_URL,
) -> None:
    """Revoke an API key.

    It stops working at once. Revoking a revoked key changes nothing.
    """
    try:
        with open_store(database, write=True) as store:
            before = store.get_key(key_id)
            key = store.revoke_key(key_id)
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)
    if key is None:
        fail(f"no API key with id '{key_id}' in {_where(database)} (see `redirectory keys list`)")
    assert key.revoked_at is not None
    when = key.to_dict()["revoked_at"]
    if before is not None and before.revoked_at is not None:
        out.print(f"key {key.id} '{key.name}' was already revoked at {when} ({_where(database)})",
                  highlight=False, markup=False)
    else:
        out.print(f"revoked key {key.id} '{key.name}' at {when} ({_where(database)})", highlight=False, markup=False)


# -- db ---------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(database: DatabaseOpt = DEFAULT_DATABASE_URL) -> None:
    """Create or migrate the database schema.

    `serve` does this at start unless --no-migrate.
    """
    from redirectory.store import sqlite_file

    try:
        path = sqlite_file(database)
        new = path is not None and not path.exists()
        with open_store(database, write=True, migrate=False) as store:
            if new:
                err.print(f"created {_where(database)}", highlight=False, markup=False)
            before, head = store.schema_version()
            store.upgrade()
            if before is None:
                out.print(f"created the schema (migration {head}) in {_where(database)}", highlight=False, markup=False)
            elif before != head:
                out.print(f"upgraded {_where(database)} from migration {before} to {head}", highlight=False,
                          markup=False)
            else:
                out.print(f"{_where(database)} is up to date (migration {head}, table revision {store.revision()})",
                          highlight=False, markup=False)
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)


@db_app.command("prune")
def db_prune(database: DatabaseOpt = DEFAULT_DATABASE_URL) -> None:
    """Prune the history now, down to its retention.

    Gateways do this on their own; run it where no gateway runs (the toolkit alone). The retention
    comes from REDIRECTORY_HISTORY_KEEP_REVISIONS, _KEEP_DAYS and _MAX_CHANGES (docs/deploy.md).
    """
    from redirectory.store.retention import Retention

    try:
        retention = Retention.from_env()
    except ValueError as exc:
        usage_error(str(exc))
    try:
        with open_store(database, write=True) as store:
            pruned = store.prune_history(retention, seconds=float("inf"))
            out.print(f"{_where(database)}: removed {pruned.revisions} revision(s) and {pruned.changes} logged "
                      f"change(s); the history now starts at revision {pruned.oldest} (keeps at least "
                      f"{retention.keep_revisions} revisions and {retention.keep_days} days, at most "
                      f"{retention.max_changes} changes)", highlight=False, markup=False)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001
        _store_error(exc, database)


# -- check ------------------------------------------------------------------------------------
@app.command("check")
def check_command(
    urls: Annotated[list[str] | None, typer.Argument(help="Live URLs to probe hop by hop (never auto-followed).", show_default=False)] = None,
    har: Annotated[list[Path] | None, typer.Option("--har", help="A HAR file of recorded traffic (repeatable).", show_default=False)] = None,
    openapi: Annotated[list[Path] | None, typer.Option("--openapi", help="An OpenAPI 3.0/3.1/3.2 file, YAML or JSON (repeatable).", show_default=False)] = None,
    method: Annotated[str, typer.Option("--method", help="Method of the first live request.")] = "GET",
    header: Annotated[list[str] | None, typer.Option("--header", "-H", help="'Name: value' sent with every live request (repeatable).", show_default=False)] = None,
    data: Annotated[str | None, typer.Option("--data", help="Request body for an unsafe --method.", show_default=False)] = None,
    allow_unsafe: Annotated[bool, typer.Option("--allow-unsafe", help="Allow unsafe methods, only to --allow-host hosts.")] = False,
    allow_host: Annotated[list[str] | None, typer.Option("--allow-host", help="Host that may receive unsafe methods (repeatable).", show_default=False)] = None,
    profile: Annotated[str, typer.Option("--profile", help="house (the design guide) or rfc (RFC levels only).")] = "house",
    policy_308: Annotated[str, typer.Option("--policy-308", help="How to report 308: allow, info, warning or error.")] = "info",
    require_absolute_location: Annotated[bool, typer.Option("--require-absolute-location", help="A relative Location is an error.")] = False,
    allow_origin: Annotated[list[str] | None, typer.Option("--allow-origin", help="Origin redirects may go to without RDR-CROSS-ORIGIN (repeatable).", show_default=False)] = None,
    max_hops: Annotated[int, typer.Option("--max-hops", help="Longest redirect chain before RDR-CHAIN warns.")] = 5,
    ignore: Annotated[list[str] | None, typer.Option("--ignore", help="Check id to skip (repeatable, or comma-separated).", show_default=False)] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="Leave out the legacy findings listed in this file.", show_default=False)] = None,
    write_baseline: Annotated[Path | None, typer.Option("--write-baseline", help="Write this run's findings as a baseline file.", show_default=False)] = None,
    fmt: Annotated[str, typer.Option("--format", help="text, json, sarif or junit.")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to a file.", show_default=False)] = None,
    fail_on: Annotated[str, typer.Option("--fail-on", help="Exit 1 on findings at or above: error, warning or info.")] = "error",
    rate: Annotated[float, typer.Option("--rate", help="Live requests per second at most (0: no limit).")] = 10.0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per live request.")] = 10.0,
    no_conditional: Annotated[bool, typer.Option("--no-conditional", help="Skip the conditional re-requests (304 tests).")] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify TLS certificates.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show each finding's source, doc link and evidence.")] = False,
    list_ids: Annotated[bool, typer.Option("--list", help="List the check ids and exit.")] = False,
) -> None:
    """Lint redirects and conditional requests.

    Of live URLs, HAR files or OpenAPI documents.

    Exit 0 when nothing reaches --fail-on, 1 when findings do, 2 on a usage error. See docs/checks.md.
    """
    from redirectory.check.live import LiveOptions
    from redirectory.check.runner import CheckOptions, execute, list_checks

    if list_ids:
        list_checks(out)
        return
    live = LiveOptions(method=method.upper(), data=data.encode() if data is not None else None,
                       allow_unsafe=allow_unsafe, allow_hosts=frozenset(h.lower() for h in allow_host or []),
                       timeout=timeout, rate=rate, max_hops=max_hops, conditional=not no_conditional,
                       verify=not insecure)
    options = CheckOptions(urls=urls or [], har=har or [], openapi=openapi or [], live=live, headers=header or [],
                           profile=profile, policy_308=policy_308, absolute_location=require_absolute_location,
                           allowed_origins=allow_origin or [], ignore=ignore or [], baseline=baseline,
                           write_baseline=write_baseline, format=fmt, output=output, fail_on=fail_on,
                           verbose=verbose)
    code = execute(options, out, err)
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Entry point: no tracebacks for users unless REDIRECTORY_DEBUG=1."""
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("REDIRECTORY_DEBUG"):
            raise
        # A bug of ours: name it without library text (which can leak URLs and internals).
        err.print(Text.assemble(("error:", "red"), f" unexpected internal error ({type(exc).__name__}); "
                                "please report it with the command you ran"), highlight=False, soft_wrap=True)
        err.print("(set REDIRECTORY_DEBUG=1 to see the traceback)", style="dim", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
