"""Every Python example in docs/client.md runs, against a real httpbin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["client_servers"]

DOC = Path(__file__).parent.parent / "docs" / "client.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_doc_has_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_example_runs(number: int, httpbin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples may create redirects.sqlite
    source = EXAMPLES[number].replace("http://127.0.0.1:8080", httpbin_url)
    exec(compile(source, f"docs/client.md example {number + 1}", "exec"), {"__name__": "__main__"})
