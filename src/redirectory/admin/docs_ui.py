"""The interactive API docs page (Swagger UI) on the admin listener, working offline.

FastAPI's default page loads Swagger UI's JavaScript and CSS from a CDN, so it is blank on a
machine without Internet access (and tells the CDN who reads the docs). Here the page loads them
from the admin listener itself, which serves them from the installed `fastapi-offline` package
(Swagger UI 5, which renders the OpenAPI 3.1 document). Every URL in the page is a path on the
listener; the online validator badge is off.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

#: Where the page's assets are served (outside /api: they are not API resources).
ASSETS_PATH = "/swagger-ui"
#: The package directory holding swagger-ui-bundle.js, swagger-ui.css and favicon.png.
ASSETS_PACKAGE = ("fastapi_offline", "static")


def install(app: FastAPI, *, docs_url: str, openapi_url: str) -> None:
    """Serve the docs page at `docs_url` and its assets under ASSETS_PATH (create the app with docs_url=None)."""
    assets = StaticFiles(packages=[ASSETS_PACKAGE])

    @app.api_route(ASSETS_PATH + "/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def swagger_ui_asset(name: str, request: Request) -> Response:
        return await assets.get_response(name, request.scope)  # ETag, Last-Modified, 304; unknown name: 404

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title}: interactive docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # the badge would ask validator.swagger.io
        )
