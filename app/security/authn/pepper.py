"""The server pepper: the secret API keys and session tokens are HMAC'd under, never in the catalog.

A pepper is ``id:secret`` (the secret at least 32 characters, e.g. ``secrets.token_urlsafe(32)``);
a list of them, one per line in ``auth_pepper_file`` or comma-separated in ``TIDELOG_AUTH_PEPPER``,
is the current pepper first and the previous ones after it: new keys are hashed under the first,
keys made under an older one still verify. Rotating is adding a new first line on every broker,
then, once the old keys are replaced, removing the old line.

Without either setting, a single broker keeps a generated pepper in ``<data_dir>/auth.pepper``
(mode 0600); a cluster must be given one (every broker needs the same).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from app.config import Settings

__all__ = ["MIN_SECRET_CHARS", "PEPPER_FILE", "Pepper", "PepperError", "load_peppers", "parse_peppers"]

PEPPER_FILE: Final = "auth.pepper"
MIN_SECRET_CHARS: Final = 32


class PepperError(ValueError):
    """The pepper setting is missing or malformed; the message says which and how."""


@dataclass(frozen=True, slots=True)
class Pepper:
    id: str
    secret: bytes

    def mac(self, purpose: bytes, value: bytes) -> bytes:
        """HMAC-SHA256 of ``value`` under this pepper, separated by ``purpose`` (keys, sessions…)."""
        return hmac.new(self.secret, purpose + b"\0" + value, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"Pepper(id={self.id!r}, secret=<hidden>)"


def parse_peppers(text: str) -> tuple[Pepper, ...]:
    """``id:secret`` entries (lines or commas), the current first; ``PepperError`` when malformed."""
    peppers: list[Pepper] = []
    for entry in filter(None, (e.strip() for e in text.replace(",", "\n").splitlines())):
        pepper_id, sep, secret = entry.partition(":")
        if not sep or not pepper_id or len(secret) < MIN_SECRET_CHARS:
            raise PepperError(
                f"a pepper is 'id:secret' with a secret of at least {MIN_SECRET_CHARS} characters"
            )
        if any(p.id == pepper_id for p in peppers):
            raise PepperError(f"pepper id {pepper_id!r} appears twice")
        peppers.append(Pepper(pepper_id, secret.encode()))
    if not peppers:
        raise PepperError("the pepper setting is empty")
    return tuple(peppers)


def load_peppers(settings: Settings) -> tuple[Pepper, ...]:
    """The configured peppers, else the data directory's own (created on first use, mode 0600)."""
    if settings.auth_pepper is not None:
        return parse_peppers(settings.auth_pepper.get_secret_value())
    if settings.auth_pepper_file is not None:
        try:
            return parse_peppers(settings.auth_pepper_file.read_text())
        except OSError as exc:
            raise PepperError(f"cannot read auth_pepper_file: {exc.strerror}") from None
    path = Path(settings.data_dir) / PEPPER_FILE
    try:
        return parse_peppers(path.read_text())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"p1:{secrets.token_urlsafe(32)}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it a moment ago
        return parse_peppers(path.read_text())
    with os.fdopen(fd, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    return parse_peppers(text)
