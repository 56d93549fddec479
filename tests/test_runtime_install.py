"""redirectory installed with its runtime dependencies alone (no extras, no dev) runs every command.

`make install` users once got `ModuleNotFoundError: httplint` from `redirectory check`: httplint was
only a dev dependency. Here `pip wheel --no-deps` builds the package's wheel (with LICENSE in it) from
a copy of this tree, a fresh virtualenv gets that wheel with its runtime dependencies (no extras, no
dev tools), and its own `redirectory` executable, run from a directory outside the checkout, runs
check (list, OpenAPI, HAR, live), serve on each HTTP server, every `rules` command, `keys list` and
`db upgrade`; every module of the package must import there, except the adapters whose framework is
an extra. A static test checks that every third-party module
imported anywhere in src/ is a runtime dependency or belongs to an extra the docs tell users to
install (`'.[NAME]'` or `'/path/to/redirectory[NAME]'`), all derived from pyproject.toml and the
installed distributions.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import gateway_process
from gateway_process import cli, start_serve

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "redirectory"
DATA = Path(__file__).resolve().parent / "data"
RULES = ROOT / "examples" / "redirects.yaml"
#: An extra in an install command: `pip install '/path/to/redirectory[flask]'` or `pip install -e '.[flask]'`.
EXTRA_IN_DOCS = re.compile(r"(?:redirectory|\B\.)\[([a-z0-9_,-]+)\]")


# -- what pyproject.toml declares, what src/ imports ------------------------------------------------
def declared() -> tuple[set[str], dict[str, set[str]]]:
    """(runtime distributions, {extra: distributions}) from pyproject.toml, canonical names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {canonicalize_name(Requirement(r).name) for r in reqs}

    return names(project["dependencies"]), {k: names(v) for k, v in project["optional-dependencies"].items()}


def documented_extras() -> set[str]:
    """Extras the docs tell users to install (the development extra is in the Makefile, not there)."""
    texts = [p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]]
    return {extra for text in texts for group in EXTRA_IN_DOCS.findall(text) for extra in group.split(",")}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def imports(tree: ast.Module) -> Iterator[tuple[str, bool]]:
    """(top-level name of each absolute import, whether it runs when the module is imported)."""

    def visit(node: ast.AST, eager: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                yield from ((alias.name.split(".")[0], eager) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield child.module.split(".")[0], eager
            lazy = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            yield from visit(child, eager and not lazy)

    return visit(tree, True)


def third_party_imports() -> dict[str, dict[str, bool]]:
    """{module of src/: {third-party top-level module it imports: imported eagerly}}."""
    found: dict[str, dict[str, bool]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for top, eager in imports(ast.parse(path.read_text(), str(path))):
            if top not in sys.stdlib_module_names and top != "redirectory":
                mods = found.setdefault(module_name(path), {})
                mods[top] = mods.get(top, False) or eager
    return found


@functools.cache
def owner(top: str) -> frozenset[str]:
    """The distributions (canonical names) that provide import name `top` in this (dev) environment."""
    return frozenset(canonicalize_name(d) for d in _distributions().get(top, []))


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def extra_only_imports() -> dict[str, set[str]]:
    """{module of src/: third-party modules it imports eagerly that only an extra installs}."""
    runtime, _ = declared()
    return {mod: {top for top, eager in tops.items() if eager and not owner(top) & runtime}
            for mod, tops in third_party_imports().items()}


def test_every_third_party_import_is_a_runtime_dependency_or_a_documented_extra() -> None:
    runtime, extras = declared()
    documented = documented_extras()
    found = third_party_imports()
    assert {"httplint", "sqlalchemy", "fastapi"} <= {top for tops in found.values() for top in tops}
    problems = []
    for mod, tops in found.items():
        for top in tops:
            dists = owner(top)
            if not dists:
                problems.append(f"{mod} imports {top}, which no installed distribution provides")
            elif not dists & runtime:
                in_extras = sorted(name for name, reqs in extras.items() if dists & reqs and name in documented)
                if not in_extras:
                    problems.append(f"{mod} imports {top} ({', '.join(sorted(dists))}): not in [project] dependencies "
                                    f"nor in an extra the docs name as redirectory[EXTRA] ({', '.join(sorted(documented))})")
    assert not problems, "\n".join(problems)


# -- the fresh virtualenv ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtualenv with this tree installed (not editable) from its runtime dependencies alone, and
    gateway_process.cli()/start_serve() running ITS `redirectory` for the tests of this module."""
    if importlib.util.find_spec("venv") is None or importlib.util.find_spec("pip") is None:
        pytest.skip("the venv module or pip is not available to this Python: cannot build the runtime virtualenv")
    tmp = tmp_path_factory.mktemp("runtime")
    started = time.monotonic()
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"python -m venv does not work here: {made.stderr.strip()}")
    # A copy of the tree: the in-tree build would write build/ and *.egg-info into the shared checkout.
    source = tmp / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp / "dist"),
                            str(source)], capture_output=True, text=True, check=False, timeout=600)
    assert built.returncode == 0, f"pip wheel failed:\n{built.stderr}"
    (wheel,) = (tmp / "dist").glob("redirectory-*.whl")
    check_wheel(wheel)
    python = tmp / "venv" / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile",
                                str(wheel)], capture_output=True, text=True, check=False, timeout=600)
    assert installed.returncode == 0, f"pip install of the wheel and its runtime dependencies failed:\n{installed.stderr}"
    print(f"\nwheel built and installed in a runtime virtualenv in {time.monotonic() - started:.1f}s")
    elsewhere = tmp / "elsewhere"  # not the checkout: nothing of it is on the path
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PYTHONPATH", raising=False)
        mp.chdir(elsewhere)
        mp.setattr(gateway_process, "BIN", tmp / "venv" / "bin" / "redirectory")
        yield python


def check_wheel(wheel: Path) -> None:
    """The wheel holds the package's data files and its license, and says which license it is."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        fields = archive.read(metadata).decode()
        licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert licence and "Apache License" in archive.read(licence[0]).decode(), sorted(names)
    assert re.search(r"^License-Expression: Apache-2\.0$", fields, re.M), fields[:2000]
    assert {"redirectory/py.typed", "redirectory/store/alembic.ini"} <= names
    assert any(n.startswith("redirectory/store/migrations/versions/") for n in names)
    assert {"redirectory/admin/console/index.html", "redirectory/admin/console/console.js"} <= names  # the web console
    assert not any(n.startswith(("tests/", "bench/", "docs/")) for n in names)


def test_every_module_imports_but_the_adapters_of_extras(runtime_venv: Path) -> None:
    """In the runtime venv every module imports, except those importing an extra (toolkit.flask needs
    flask...), which fail on exactly that: so this venv sees neither the extras nor the dev venv."""
    script = """if True:
        import importlib, json, pkgutil, redirectory
        modules = {}
        for info in pkgutil.walk_packages(redirectory.__path__, "redirectory."):
            try:
                importlib.import_module(info.name)
                modules[info.name] = None
            except ModuleNotFoundError as exc:
                modules[info.name] = exc.name
        print(json.dumps({"file": redirectory.__file__, "modules": modules}))
    """
    ran = subprocess.run([str(runtime_venv), "-c", script], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    dev_only = subprocess.run([str(runtime_venv), "-c", "import importlib.util as u; print([m for m in "
                               "('pytest', 'hypothesis', 'mypy', 'ruff', 'schemathesis') if u.find_spec(m)])"],
                              capture_output=True, text=True, check=False)
    assert dev_only.stdout.strip() == "[]", dev_only.stdout + dev_only.stderr  # no dev dependency came along
    assert Path(result["file"]).is_relative_to(runtime_venv.parent.parent), result["file"]
    # every module of a package (Alembic loads migrations/ by path: `db upgrade` runs those)
    in_packages = {module_name(p) for p in PACKAGE.rglob("*.py")
                   if all((d / "__init__.py").exists() for d in p.parents if d.is_relative_to(PACKAGE))}
    assert set(result["modules"]) == in_packages - {"redirectory"}
    expected = extra_only_imports()
    failed = {m: missing for m, missing in result["modules"].items() if missing}
    assert set(failed) == {m for m, tops in expected.items() if tops}, failed
    assert failed, "no module needs an extra: then the extras are not optional"
    for mod, missing in failed.items():
        assert missing.split(".")[0] in expected[mod], (mod, missing)


def test_check_list_openapi_and_har(runtime_venv: Path) -> None:
    listed = cli("check", "--list")
    assert listed.returncode == 0 and "S302-FORBIDDEN" in listed.stdout, listed.stderr
    clean = cli("check", "--openapi", str(DATA / "check" / "openapi-clean.yaml"))
    assert clean.returncode == 0 and "0 errors" in clean.stdout, clean.stderr
    bad = cli("check", "--openapi", str(DATA / "check" / "openapi-violations.yaml"))
    assert bad.returncode == 1 and "S302-FORBIDDEN" in bad.stdout, bad.stderr
    har = cli("check", "--har", str(DATA / "har" / "naive-client.har"), "--format", "json")
    assert har.returncode == 1, har.stderr
    assert {f["id"] for f in json.loads(har.stdout)["findings"]} == {"RDR-CROSS-ORIGIN", "S307-METHOD-PRESERVED"}


@pytest.mark.parametrize("server", ["httptools", "uvicorn", "granian"])
def test_serve_answers_a_redirect_and_a_live_check(runtime_venv: Path, tmp_path: Path, server: str) -> None:
    served = start_serve(tmp_path, "--rules", str(RULES), "--server", server)
    try:
        response = httpx.get(served.base + "/api/v1/users/42", timeout=10)
        assert response.status_code == 301 and response.headers["location"] == "/api/v2/users/42"
        key = cli("keys", "create", "runtime test", "--scope", "read", "--database", served.database)
        assert key.returncode == 0, key.stderr
        listed = httpx.get(served.admin + "/api/v1/rules", headers={"Authorization": f"Bearer {key.stdout.strip()}"},
                           timeout=10)
        assert listed.status_code == 200 and "/api/v1/users/{rest:path}" in listed.text, listed.text
        # the docs page's assets come from a runtime dependency too (fastapi-offline)
        assert httpx.get(served.admin + "/swagger-ui/swagger-ui.css", timeout=10).status_code == 200
        assert httpx.get(served.admin + "/console/console.js", timeout=10).status_code == 200  # from the wheel
        if server == "httptools":
            checked = cli("check", "--rate", "0", "--format", "json", served.base + "/api/v1/users/42")
            assert checked.returncode in (0, 1), checked.stderr
            report = json.loads(checked.stdout)
            assert report["targets"] == [served.base + "/api/v1/users/42"] and report["summary"]["exchanges"] >= 2
    finally:
        assert served.stop() == 0, served.output()


def test_every_rules_keys_and_db_command(runtime_venv: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/rules.db"
    netlify = tmp_path / "_redirects"
    netlify.write_text("/old-docs/*  /docs/:splat  301\n")

    def ok(*args: str) -> str:
        ran = cli(*args)
        assert ran.returncode == 0 and "Traceback" not in ran.stderr, (args, ran.stdout, ran.stderr)
        return ran.stdout

    ok("db", "upgrade", "--database", db)
    ok("rules", "validate", str(RULES))
    assert "applied" in ok("rules", "apply", str(RULES), "--database", db)
    assert "imported 1 rule(s)" in ok("rules", "import", str(netlify), "--database", db)
    exported = ok("rules", "export", "--format", "yaml", "--database", db)
    assert "/old-docs/" in exported and "/api/v1/users/{rest:path}" in exported
    assert "/api/v2/users/42" in ok("rules", "test", "http://api.example.com/api/v1/users/42", "--database", db)
    assert "/old-docs/" in ok("rules", "list", "--database", db)
    ok("rules", "stats", "--database", db)
    ok("keys", "list", "--database", db)


def test_postgresql_url_without_psycopg_names_the_extra(runtime_venv: Path) -> None:
    ran = cli("rules", "list", "--database", "postgresql://127.0.0.1/test")
    assert ran.returncode != 0 and "Traceback" not in ran.stderr and "ModuleNotFoundError" not in ran.stderr
    assert "PostgreSQL driver" in ran.stderr and re.search(r"redirectory\[postgres\]|postgres extra", ran.stderr), \
        ran.stderr
