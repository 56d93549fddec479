"""A Flask app that redirects the way most Flask apps do: `redirect()` with its default 302."""

from __future__ import annotations

from flask import Flask, redirect
from werkzeug.wrappers import Response

app = Flask(__name__)


@app.get("/old")
def old() -> Response:
    return redirect("/new")


@app.get("/new")
def new() -> dict[str, bool]:
    return {"ok": True}
