"""Password hashing for HTTP Basic and the console's login: argon2id (``argon2-cffi``).

The hash is a PHC string carrying its own parameters; after a successful verification a hash made
with other parameters than the broker's current ones (``password_time_cost``,
``password_memory_cost_kib``) is rehashed and stored, as ``check_needs_rehash`` suggests.
Verifying costs tens of milliseconds of CPU on purpose: it runs in a worker thread, and a verified
password is cached (``cache.py``) so a client sending Basic on every request pays it once a minute.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.config import Settings

__all__ = ["MAX_PASSWORD_CHARS", "MIN_PASSWORD_CHARS", "PasswordPolicy", "check_password"]

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024


class PasswordPolicy:
    """Hashes and verifies passwords with the broker's argon2id parameters."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.password_time_cost, memory_cost=settings.password_memory_cost_kib
        )
        # Verified against when the user does not exist, so that its absence costs the same time.
        self._dummy = self._hasher.hash("tidelog: no such user")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (None: no such user, checked against a dummy)."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True


def check_password(password: str) -> str | None:
    """Why ``password`` cannot be set (too short or too long), or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password has at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"a password has at most {MAX_PASSWORD_CHARS} characters"
    return None

