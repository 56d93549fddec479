"""The importers against the real servers, file by file (tests/differential.py does the work).

Each corpus file (../shared/corpus/{nginx,apache}/, or $REDIRECTORY_CORPUS, and the real files of
tests/data/real/{nginx,apache}/, tests/data/real/README.md) is served as written by
nginx or apache2 and, imported with `redirectory rules import`, by `redirectory serve`; both get the
same requests. The agreement of each file must not fall below the floor recorded for it in
tests/data/differential_floor.json: a ratchet (raise a floor when an importer fix raises it; the
target is 99 %). The files are run once, a few at a time, by a module fixture, so the whole module
takes about as long as its slowest files; `python tests/differential.py FILE` shows one file's
differences.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import differential

CORPUS = differential.find_corpus()
FLOORS_FILE = Path(__file__).parent / "data" / "differential_floor.json"
#: "floors": the shared corpus; "real_floors": tests/data/real (its own section, same ratchet)
FLOORS: dict[str, int] = {**json.loads(FLOORS_FILE.read_text())["floors"],
                          **json.loads(FLOORS_FILE.read_text()).get("real_floors", {})}
#: each file's corpus root (../shared/corpus, tests/data/real)
ROOT_OF: dict[str, Path] = {name: root for root in reversed(differential.corpus_roots())
                            for name in differential.corpus_files(root)}
NO_CORPUS = ("no corpus: neither ../shared/corpus next to the repository nor $REDIRECTORY_CORPUS "
             "(see ../shared/corpus/README.md)")


def params() -> list[object]:
    out: list[object] = []
    if CORPUS is None:
        out.append(pytest.param(None, marks=pytest.mark.skip(reason=NO_CORPUS), id="no-corpus"))
    for name in ROOT_OF:
        fmt = name.split("/", 1)[0]
        marks = [pytest.mark.nginx] if fmt == "nginx" else []
        if differential.server_binary(fmt) is None:
            install = "apt-get install nginx-light" if fmt == "nginx" else "apt-get install apache2"
            marks.append(pytest.mark.skip(reason=f"{'nginx' if fmt == 'nginx' else 'apache2'} not installed: {install}"))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


@pytest.fixture(scope="module")
def reports(request: pytest.FixtureRequest) -> dict[str, differential.FileReport]:
    """Every selected file's report, run a few files at a time (each server starts once per file)."""
    selected = [item.callspec.params["name"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")
                and item.callspec.params.get("name") is not None
                and not item.get_closest_marker("skip")]
    reports = differential.run_files([(ROOT_OF[name], name, None) for name in dict.fromkeys(selected)])
    return {r.file: r for r in reports}


@pytest.mark.parametrize("name", params())
def test_agreement_does_not_fall_below_its_floor(name: str, reports: dict[str, differential.FileReport]) -> None:
    report = reports[name]
    if report.status == "skipped":
        pytest.skip(f"{name} cannot be served here: {report.reason}")
    if name not in FLOORS and ROOT_OF[name] == differential.REAL_ROOT:
        pytest.xfail(f"no floor recorded for {name} in the real_floors section of {FLOORS_FILE.name} yet: it "
                     f"measures {report.agreement:.1f}% today; record {max(0, int(report.agreement) - 1)}")
    assert name in FLOORS, (f"no floor recorded for {name} in {FLOORS_FILE.name}: it measures {report.agreement:.1f}% "
                            f"today; record {int(report.agreement)}\n{report.summary()}")
    floor = FLOORS[name]
    assert report.agreement >= floor, f"agreement fell below the floor of {floor}%:\n{report.summary()}"
    assert int(report.agreement) <= floor + 5 or floor >= 99, (
        f"agreement rose to {report.agreement:.1f}%: raise its floor in {FLOORS_FILE.name} to "
        f"{int(report.agreement)} so the gain is kept\n{report.summary()}")
    if report.agreement < differential_target():
        pytest.xfail(f"{report.agreement:.1f}% agreement, below the target of {differential_target()}%: "
                     f"{report.summary().splitlines()[0] if report.summary() else ''}")


def differential_target() -> int:
    return int(json.loads(FLOORS_FILE.read_text())["target"])


def test_the_floors_name_corpus_files() -> None:
    """A floor for a file the corpus no longer has is a ratchet nobody checks."""
    if CORPUS is None:
        pytest.skip(NO_CORPUS)
    assert sorted(set(FLOORS) - set(ROOT_OF)) == []
