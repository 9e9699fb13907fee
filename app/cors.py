"""Cross-origin requests (CORS) from browser pages served by another origin.

Off by default: without ``cors_allow_origins`` no ``Access-Control-*`` header is ever sent and a
preflight ``OPTIONS`` reaches the routes (405), exactly as before. With a list of origins (or ``*``),
Starlette's ``CORSMiddleware`` answers preflights itself and adds ``Access-Control-Allow-Origin`` to
every answer for an allowed origin, including streaming ones (SSE): it only rewrites the headers of the
first message, never buffers the body.

Credentials (cookies, ``Authorization`` sent by the browser with ``credentials: 'include'``) are never
allowed here: ``CorsPolicy.allow_credentials`` is ``False`` for every policy built from settings. The
seam for credentialed CORS is ``CorsPolicy`` itself: a policy with credentials must name its origins,
because the browser refuses ``*`` together with credentials and silently widening it to "echo any
origin" would hand every site on the web the user's session. ``CorsPolicy`` refuses that combination.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.config import Settings

__all__ = ["CorsPolicy", "install_cors", "split_list"]

#: Headers a browser page may read from an answer beyond the CORS-safelisted ones.
EXPOSED_HEADERS = ("Retry-After", "Location")


def split_list(value: str) -> tuple[str, ...]:
    """The non-empty, stripped items of a comma-separated setting (``"a, b,"`` → ``("a", "b")``)."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which origins, methods and request headers a cross-origin page may use."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    max_age_s: int = 600
    allow_credentials: bool = False

    def __post_init__(self) -> None:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError("CORS with credentials must list its origins: '*' is refused")

    @property
    def enabled(self) -> bool:
        return bool(self.allow_origins)

    @classmethod
    def from_settings(cls, settings: Settings) -> CorsPolicy:
        return cls(
            allow_origins=split_list(settings.cors_allow_origins),
            allow_methods=split_list(settings.cors_allow_methods),
            allow_headers=split_list(settings.cors_allow_headers),
            max_age_s=settings.cors_max_age_s,
        )


def install_cors(app: FastAPI, policy: CorsPolicy) -> None:
    """Add CORS handling for ``policy`` as the outermost middleware (nothing when CORS is off), so
    that even the limits' refusals (413, 503) reach the page readable."""
    if not policy.enabled:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(policy.allow_origins),
        allow_methods=list(policy.allow_methods),
        allow_headers=list(policy.allow_headers),
        allow_credentials=policy.allow_credentials,
        expose_headers=list(EXPOSED_HEADERS),
        max_age=policy.max_age_s,
    )
