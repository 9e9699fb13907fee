"""mTLS: the principal of a client certificate, by rules like Kafka's ``ssl.principal.mapping.rules``.

uvicorn does not hand the peer certificate to the application, so ``tidelog serve``'s protocol
(``app/server.py``) reads it once per connection, after the TLS handshake, and leaves the mapped
principal in every request's scope (``scheme.PEER_PRINCIPAL_KEY``); authentication uses it when
the request carries no ``Authorization`` header.

The certificate's subject is written as RFC 2253 does (most specific first: ``CN=alice,OU=eng,O=acme``),
then the rules (KIP-371) are tried in order, the first match wins::

    RULE:^CN=([^,]+),OU=([^,]+).*$/$1@$2/L, RULE:^CN=([^,]+).*$/$1/, DEFAULT

``RULE:<regex>/<replacement>/`` with an optional ``L`` or ``U`` after the last ``/`` (lower or upper
case the result); ``DEFAULT`` is the whole subject. No rule matching: no principal from the
certificate (the request must carry a credential).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MappingRule", "parse_rules", "principal_of_certificate", "subject_dn"]

_RULE: Final = re.compile(r"\s*(?:(DEFAULT)|RULE:((?:\\/|[^/])*)/((?:\\/|[^/])*)/([LU])?)\s*(?:,|$)")
_SHORT_NAMES: Final = {
    "commonName": "CN", "organizationalUnitName": "OU", "organizationName": "O", "localityName": "L",
    "stateOrProvinceName": "ST", "countryName": "C", "streetAddress": "STREET", "domainComponent": "DC",
    "userId": "UID", "emailAddress": "EMAILADDRESS",
}


@dataclass(frozen=True, slots=True)
class MappingRule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: str = ""
    case: str | None = None

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        match = self.pattern.fullmatch(dn)
        if match is None:
            return None
        result = re.sub(r"\$(\d+)", lambda m: match.group(int(m.group(1))) or "", self.replacement)
        if self.case == "L":
            return result.lower()
        if self.case == "U":
            return result.upper()
        return result


def parse_rules(text: str) -> tuple[MappingRule, ...]:
    """The rules of ``text`` in order; ``ValueError`` naming the first part that is not a rule."""
    rules: list[MappingRule] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _RULE.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"ssl_principal_mapping_rules: cannot read {text[position:]!r}")
        if match.group(1):
            rules.append(MappingRule(None))
        else:
            pattern = match.group(2).replace("\\/", "/")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"ssl_principal_mapping_rules: bad pattern {pattern!r}: {exc}") from None
            rules.append(MappingRule(compiled, match.group(3).replace("\\/", "/"), match.group(4)))
        position = match.end()
    if not rules:
        raise ValueError("ssl_principal_mapping_rules is empty")
    return tuple(rules)


def subject_dn(certificate: dict[str, Any]) -> str:
    """The subject of ``ssl.getpeercert()`` as an RFC 2253 string (most specific first)."""
    parts: list[str] = []
    rdns: Iterable[Sequence[tuple[str, str]]] = certificate.get("subject", ())
    for rdn in reversed(list(rdns)):
        parts.append("+".join(f"{_SHORT_NAMES.get(name, name)}={_escape(value)}" for name, value in rdn))
    return ",".join(parts)


def _escape(value: str) -> str:
    return re.sub(r'([,+"\\<>;])', r"\\\1", value)


def principal_of_certificate(certificate: dict[str, Any] | None, rules: Sequence[MappingRule]) -> str | None:
    """``User:<mapped name>`` of a verified peer certificate, or None (no certificate, no rule)."""
    if not certificate:
        return None
    dn = subject_dn(certificate)
    for rule in rules:
        name = rule.apply(dn)
        if name:
            return f"User:{name}"
    return None
