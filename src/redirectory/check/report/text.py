"""The default output: findings grouped by where they are, with their fix (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from redirectory.check.model import Severity
from redirectory.check.report import RunResult

STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render(result: RunResult, console: Console, verbose: bool = False) -> None:
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(result.findings):
        groups.setdefault(str(f.location), []).append(i)
    for where, indexes in groups.items():
        console.print(f"[bold]{escape(where)}[/bold]", highlight=False)
        for i in indexes:
            f = result.findings[i]
            console.print(f"  [{STYLE[f.severity]}]{f.severity.value:<7}[/] [bold]{f.id}[/bold] {escape(f.message)}",
                          highlight=False)
            console.print(f"          fix: {escape(f.fix)}", style="dim", highlight=False)
            if verbose:
                console.print(f"          why: {escape(f.source)} — {f.doc}", style="dim", highlight=False)
                for key, value in f.evidence.items():
                    console.print(f"          {key}: {escape(str(value))}", style="dim", highlight=False)
    counts = ", ".join(f"{result.count(s)} {s.value}{'s' if result.count(s) != 1 else ''}" for s in Severity)
    extra = f", {result.baselined} baselined" if result.baselined else ""
    targets = len(result.targets)
    console.print(f"{counts}{extra} — {result.exchanges} exchanges from {targets} target{'s' if targets != 1 else ''}"
                  f" (profile {result.profile})", highlight=False,
                  style="bold red" if result.count(Severity.ERROR) else "bold green" if not result.findings else "")
