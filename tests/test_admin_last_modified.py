"""The admin API never sends a `Last-Modified` later than its `Date` (RFC 9110 §8.8.2.1).

Real `redirectory serve` on SQLite and on PostgreSQL; every write and read of a rule (POST, PUT,
PATCH, GET, HEAD) and of its revision answers exactly one `Date` and a `Last-Modified` that is
not later than it. A write lands at an arbitrary moment of a second, so 50 rounds cross many
second boundaries (a `Date` refreshed once a second broke this in about half of them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve

ROUNDS = 50


@pytest.fixture
def admin(tmp_path: Path, store_url: str) -> Iterator[httpx.Client]:
    served: ServeProcess = start_serve(tmp_path, database=store_url)
    try:
        done = cli("keys", "create", "dates", "--scope", "write", "--database", store_url)
        assert done.returncode == 0, done.stderr
        key = done.stdout.strip().splitlines()[-1].strip()
        with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
            yield client
    finally:
        served.stop()


def _dates(r: httpx.Response) -> tuple[datetime, datetime]:
    """(Date, Last-Modified) of a response that must carry exactly one of each."""
    assert r.status_code < 300, r.text
    dates = r.headers.get_list("date")
    assert len(dates) == 1, dates
    return parsedate_to_datetime(dates[0]), parsedate_to_datetime(r.headers["last-modified"])


def test_last_modified_is_never_later_than_date(admin: httpx.Client) -> None:
    seen: list[tuple[str, datetime, datetime]] = []
    for i in range(ROUNDS):
        created = admin.post("/api/v1/rules", json={"from": f"/lm/{i}", "to": f"/new/{i}", "status": 308})
        seen.append(("POST", *_dates(created)))
        location = created.headers["location"]
        patched = admin.patch(location, json={"note": f"round {i}"},
                              headers={"if-match": created.headers["etag"],
                                       "content-type": "application/merge-patch+json"})
        seen.append(("PATCH", *_dates(patched)))
        replaced = admin.put(location, json={"from": f"/lm/{i}", "to": f"/newer/{i}", "status": 307},
                             headers={"if-match": patched.headers["etag"]})
        seen.append(("PUT", *_dates(replaced)))
        seen.append(("GET", *_dates(admin.get(location))))
        seen.append(("HEAD", *_dates(admin.head(location))))
        revision = admin.get("/api/v1/history?limit=1").json()["items"][0]["revision"]
        seen.append(("GET revision", *_dates(admin.get(f"/api/v1/history/{revision}"))))
    later = [f"{what}: Last-Modified {modified} > Date {date}" for what, date, modified in seen if modified > date]
    assert not later, f"{len(later)} of {len(seen)} responses:\n" + "\n".join(later)
    assert len(seen) == ROUNDS * 6
