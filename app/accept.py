"""``Accept`` negotiation of the API: a request whose ``Accept`` names nothing the broker can answer
with gets 406 problem+json (40601) before any work is done.

The API answers ``application/json`` (and ``application/problem+json`` for errors),
``application/x-ndjson`` where a route offers it (fetch, NDJSON produce acknowledgements),
``text/event-stream`` on ``.../events`` and vendor formats (``application/vnd.*``,
``application/octet-stream``) where a route offers one. ``Accept`` ranges with ``q=0`` are refused
ranges; a missing or empty ``Accept`` (or ``*/*``) accepts anything. Only ``/v1/`` paths are
checked: probes, metrics, the console and the docs keep their own types.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.error_codes import ErrorCode
from app.errors import problem_response

__all__ = ["AcceptMiddleware", "acceptable"]

_API_TYPES = (
    "application/json", "application/problem+json", "application/x-ndjson", "application/octet-stream"
)
_STREAM_TYPES = ("text/event-stream", "application/json", "application/problem+json")


def _ranges(accept: str) -> list[str]:
    """The media ranges of an ``Accept`` value with a non-zero quality, lower-cased."""
    out = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        quality = next((p.split("=", 1)[1] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(quality) <= 0:
                continue
        except ValueError:
            pass
        out.append(media.lower())
    return out


def acceptable(accept: str, path: str) -> bool:
    """True when ``accept`` admits a type the route at ``path`` can answer with."""
    ranges = _ranges(accept)
    if not ranges:
        return not accept.strip()  # "Accept:" alone accepts anything; only q=0 ranges accept nothing
    served = _STREAM_TYPES if path.endswith("/events") else _API_TYPES
    for media in ranges:
        if media == "*/*" or media in served or media.startswith("application/vnd."):
            return True
        kind, _, sub = media.partition("/")
        if sub == "*" and any(t.startswith(kind + "/") for t in served):
            return True
    return False


class AcceptMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1/"):
            accept = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"accept"), None)
            if accept is not None and not acceptable(accept, scope["path"]):
                served = "text/event-stream" if scope["path"].endswith("/events") else "application/json"
                detail = f"Accept: {accept[:200]} names no type this resource is served as (e.g. {served})"
                await problem_response(ErrorCode.NOT_ACCEPTABLE, detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)
