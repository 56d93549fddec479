"""What `redirectory check` does, behind the CLI: read the inputs into exchanges, run the checks,
apply ignores and the baseline, write the report, return the exit code.

Exit codes: 0 nothing at or above --fail-on, or --write-baseline wrote the baseline (its
findings are baselined from then on); 1 findings at or above it; 2 a usage error (bad file, URL
or option), printed as one line naming the file:line or option and what is valid, or a URL that
could not be checked at all (its first request failed: DNS, connection, TLS, timeout; then no
baseline is written).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from redirectory.check import baseline as baseline_file
from redirectory.check.checks import CHECKS
from redirectory.check.engine import UnknownCheck, run, validate_ids, walk
from redirectory.check.har import HARError, read_har
from redirectory.check.live import LiveInputError, LiveOptions, Prober, validate_url
from redirectory.check.model import Exchange, Severity
from redirectory.check.openapi import OpenAPIError, load_openapi
from redirectory.check.profiles import POLICIES_308, PROFILES, Profile
from redirectory.check.report import FORMATS, RunResult, writer
from redirectory.check.report import text as text_report

USAGE = 2


class UsageError(ValueError):
    pass


@dataclass(slots=True)
class CheckOptions:
    urls: list[str] = field(default_factory=list)
    har: list[Path] = field(default_factory=list)
    openapi: list[Path] = field(default_factory=list)
    live: LiveOptions = field(default_factory=LiveOptions)
    headers: list[str] = field(default_factory=list)  # 'Name: value', sent with every live request
    profile: str = "house"
    policy_308: str = "info"
    absolute_location: bool = False
    allowed_origins: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    baseline: Path | None = None
    write_baseline: Path | None = None
    format: str = "text"
    output: Path | None = None
    fail_on: str = "error"
    verbose: bool = False


def _choice(option: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise UsageError(f"{option} {value!r} is not valid: use one of {', '.join(valid)}")
    return value


def _headers(raw: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t"):
            raise UsageError(f"--header {item!r} is not valid: use 'Name: value'")
        out.append((name.strip(), value.strip()))
    return out


def build_profile(opts: CheckOptions) -> Profile:
    _choice("--profile", opts.profile, PROFILES)
    _choice("--policy-308", opts.policy_308, POLICIES_308)
    for o in opts.allowed_origins:
        try:
            validate_url(o)
        except LiveInputError:
            raise UsageError(f"--allow-origin {o!r} is not valid: use scheme://host[:port]") from None
    if opts.live.max_hops < 1:
        raise UsageError("--max-hops must be at least 1")
    return Profile(opts.profile, opts.policy_308, opts.absolute_location,  # type: ignore[arg-type]
                   opts.live.max_hops, frozenset(opts.allowed_origins))


@contextmanager
def _progress(err: Console) -> Iterator[Progress]:
    """A progress bar on stderr, shown only on a terminal (CI logs stay clean)."""
    progress = Progress(TextColumn("[dim]{task.description}"), BarColumn(), MofNCompleteColumn(), console=err,
                        transient=True, disable=not err.is_terminal)
    with progress:
        yield progress


def collect(opts: CheckOptions, err: Console) -> tuple[list[Exchange], list[str]]:
    exchanges: list[Exchange] = []
    targets: list[str] = []
    for path in opts.openapi:
        exchanges += load_openapi(path)
        targets.append(str(path))
    for path in opts.har:
        har = read_har(path)
        exchanges += har.exchanges
        targets.append(str(path))
        for note in har.notes:  # what the recorder's file cannot tell: said, not guessed
            err.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    if opts.urls:
        for url in opts.urls:
            validate_url(url)
        with _progress(err) as progress:
            task = progress.add_task("checking", total=len(opts.urls))

            def show(method: str, url: str) -> None:
                progress.update(task, description=f"{method} {url}"[:70])

            with Prober(opts.live, on_request=show) as prober:
                for url in opts.urls:
                    exchanges.append(prober.check_url(url))
                    targets.append(url)
                    progress.advance(task)
    return exchanges, targets


def execute(opts: CheckOptions, out: Console, err: Console) -> int:
    """Run `redirectory check`; return the exit code (errors are printed, never raised)."""
    try:
        fmt = _choice("--format", opts.format, FORMATS)
        fail_on = Severity(_choice("--fail-on", opts.fail_on, tuple(s.value for s in Severity)))
        profile = build_profile(opts)
        try:
            ignore = validate_ids(i for item in opts.ignore for i in item.split(","))
        except UnknownCheck as exc:
            raise UsageError(f"--ignore: {exc}") from None
        known = baseline_file.load(opts.baseline) if opts.baseline else frozenset()
        if not (opts.urls or opts.har or opts.openapi):
            raise UsageError("nothing to check: give URLs, --har FILE or --openapi FILE")
        opts.live.headers = _headers(opts.headers)
        exchanges, targets = collect(opts, err)
    except (UsageError, LiveInputError, HARError, OpenAPIError, baseline_file.BaselineError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return USAGE
    findings = run(exchanges, profile, ignore)
    unchecked = [ex for ex in exchanges if ex.source == "live" and ex.response is None]
    if opts.write_baseline and not unchecked:
        # Today's findings are the baseline now: the report counts them as baselined, and exit 0.
        try:
            baseline_file.write(opts.write_baseline, findings)
        except baseline_file.BaselineError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            return USAGE
        known |= {f.fingerprint for f in findings}
        err.print(f"wrote {len(findings)} findings to baseline {opts.write_baseline}", highlight=False)
    new, old = baseline_file.split(findings, known)
    order = {s: i for i, s in enumerate(Severity)}
    new.sort(key=lambda f: (f.location.file or f.location.uri or "", f.location.line or 0, order[f.severity], f.id))
    result = RunResult(new, targets, profile.name, sum(1 for _ in walk(exchanges)), len(old), sorted(ignore))
    if fmt == "text" and opts.output is None:
        text_report.render(result, out, opts.verbose)
    elif fmt == "text" and opts.output is not None:
        with opts.output.open("w", encoding="utf-8") as handle:
            text_report.render(result, Console(file=handle, width=200, no_color=True), opts.verbose)
    else:
        rendered = writer(fmt)(result)
        if opts.output is None:
            out.file.write(rendered)
        else:
            opts.output.write_text(rendered, encoding="utf-8")
    for ex in unchecked:
        err.print(f"[red]error:[/red] cannot check {escape(ex.request.url)}: {escape(ex.error or 'no response')}",
                  highlight=False, soft_wrap=True)
    if unchecked and opts.write_baseline:
        err.print(f"[red]error:[/red] baseline {escape(str(opts.write_baseline))} not written: "
                  "it would miss the findings of the URLs that could not be checked", highlight=False, soft_wrap=True)
    return USAGE if unchecked else 1 if result.failed(fail_on) else 0


def list_checks(out: Console) -> None:
    from rich.table import Table

    table = Table(box=None)
    table.add_column("id", no_wrap=True)
    for name in ("house", "rfc", "inputs"):
        table.add_column(name, no_wrap=True)
    table.add_column("check", overflow="fold")
    table.add_column("source", overflow="fold")
    for cid in sorted(CHECKS):
        c = CHECKS[cid]
        inputs = "".join(k for k, v in (("P", "live"), ("H", "har"), ("O", "openapi")) if v in c.inputs)
        table.add_row(cid, c.house.value, c.rfc.value if c.rfc else "-", inputs, c.title, c.source)
    out.print(table)
