"""``/ui``: the console's files, with a strict Content-Security-Policy, and its settings."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from app.deps import SettingsDep

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR: Final = Path(__file__).parent / "static"

#: Payloads are untrusted: the console renders them as text, and the policy forbids any script,
#: style or connection that is not the broker's own (no inline code, no eval, no framing).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The files change with the broker's version; a reload after an upgrade must not mix versions.
    "Cache-Control": "no-cache",
}
_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}

router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)


@router.get("", name="console_root")
async def console_root() -> Response:
    """Redirects to ``/ui/`` so that the page's relative module paths resolve under ``/ui/``."""
    return RedirectResponse("/ui/", status_code=308)


@router.get("/config.json", name="console_config")
async def console_config(request: Request, settings: SettingsDep) -> Response:
    """What the console may show, as the broker's settings say (``--ui-*``)."""
    body = {
        "version": request.app.version,
        "messages_enabled": settings.ui_messages_enabled,
        "export_enabled": settings.ui_export_enabled and settings.ui_messages_enabled,
        # Whether callers must sign in (the page then asks /v1/whoami who it is and shows the
        # sign-in form on a 401; POST /v1/sessions sets the session cookie).
        "auth_enabled": settings.auth_enabled,
        # Whether this broker serves Kafka Connect's REST API (the Connectors page).
        "connect_enabled": any(
            str(getattr(route, "path", "")).startswith("/v1/connectors") for route in request.app.routes
        ),
    }
    return JSONResponse(body, headers=_HEADERS)


@router.get("/{path:path}", name="console_file")
async def console_file(path: str) -> Response:
    """A file of the console; ``/ui/`` is its page (the views live in the URL's fragment)."""
    target = _resolve(path or "index.html")
    guessed = mimetypes.guess_type(target.name)[0]
    media_type = _TYPES.get(target.suffix) or guessed or "application/octet-stream"
    return FileResponse(target, media_type=media_type, headers=_HEADERS)


def _resolve(path: str) -> Path:
    """Gives the static file ``path`` names, refusing anything outside the console's directory."""
    root = STATIC_DIR.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, detail=f"the console has no file {path!r}")
    return target
