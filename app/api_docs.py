"""The API's documents and their viewers: ``/openapi.json``, ``/openapi-3.2.json``, ``/docs``, ``/redoc``.

Swagger UI and ReDoc load their scripts and styles from the broker itself (the copies shipped in the
``fastapi-offline`` package, MIT, with the upstream licences of Swagger UI and ReDoc), never from a
CDN, so both pages work on a machine with no route to the internet. Swagger UI's online validator is
switched off for the same reason, and a Content-Security-Policy lets both pages load only from the
broker.

``PUBLIC_PATHS`` lists every path this module serves, in one place: none of them needs credentials
(they describe the API; they do not touch data).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.openapi import openapi_3_2

__all__ = ["ASSETS_PATH", "OPENAPI_3_2_PATH", "PUBLIC_PATHS", "install_api_docs"]

OPENAPI_PATH = "/openapi.json"
OPENAPI_3_2_PATH = "/openapi-3.2.json"
DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/api-docs-assets"

# Every path of this module (ASSETS_PATH is a prefix): no authentication, now or when security lands.
PUBLIC_PATHS: tuple[str, ...] = (
    OPENAPI_PATH, OPENAPI_3_2_PATH, DOCS_PATH, OAUTH2_REDIRECT_PATH, REDOC_PATH, ASSETS_PATH,
)

# Swagger UI's defaults less its online validator (validator.swagger.io), which needs the network.
_SWAGGER_UI_PARAMETERS: dict[str, Any] = {"validatorUrl": None}
# Both pages may load only from the broker: ReDoc's sidebar would otherwise fetch Redocly's logo from
# a CDN (it hides the image when that fails). Inline scripts and styles are the pages' own; ReDoc's
# search runs in a worker built from a blob: URL.
_CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "worker-src 'self' blob:",
    "connect-src 'self'",
))


def _page(answer: HTMLResponse) -> HTMLResponse:
    answer.headers["Content-Security-Policy"] = _CONTENT_SECURITY_POLICY
    return answer


def install_api_docs(app: FastAPI) -> None:
    """Serve the two OpenAPI renditions and both viewers from ``app``, with their assets.

    ``app`` must be built with ``docs_url=None`` and ``redoc_url=None`` (FastAPI's own pages load
    their assets from a CDN); its ``openapi_url`` stays FastAPI's ``/openapi.json``.
    """
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_PATH, StaticFiles(directory=str(assets)), name="api-docs-assets")

    @app.get(OPENAPI_3_2_PATH, include_in_schema=False)
    async def openapi_3_2_document() -> JSONResponse:
        return JSONResponse(openapi_3_2(app.openapi()))

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(get_swagger_ui_html(
            openapi_url=f"{root}{OPENAPI_PATH}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=_SWAGGER_UI_PARAMETERS,
        ))

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(get_redoc_html(
            openapi_url=f"{root}{OPENAPI_PATH}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        ))
