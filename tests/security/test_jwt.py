"""JWT bearer tokens: accepted with the configured key, refused for every classic mistake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from app.config import Settings
from app.security.authn.jwt import JwtError, JwtVerifier

ISSUER = "https://idp.example"
AUDIENCE = "tidelog"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def settings_overrides(tmp_path: Path, public_pem: bytes) -> dict[str, Any]:
    key_file = tmp_path / "issuer.pem"
    key_file.write_bytes(public_pem)
    return {"auth_enabled": True, "auth_pepper": "p1:" + "j" * 40, "oauthbearer_public_key_file": key_file,
            "oauthbearer_expected_audience": AUDIENCE, "oauthbearer_expected_issuer": ISSUER,
            "oauthbearer_clock_skew_seconds": 5}


def _token(private_key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "svc-orders", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    body.update(claims)
    for name in [k for k, v in body.items() if v is None]:
        del body[name]
    return jwt.encode(body, private_key, algorithm="RS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _whoami(client: TestClient, token: str) -> Any:
    return client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_is_its_subject(client: TestClient, private_key: rsa.RSAPrivateKey) -> None:
    answer = _whoami(client, _token(private_key))
    assert answer.status_code == 200, answer.text
    assert answer.json()["principal"] == "User:svc-orders" and answer.json()["auth_method"] == "jwt"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"exp": -60}, "expired"),  # times are seconds from now, resolved when the test runs
        ({"exp": None}, "exp"),
        ({"nbf": 120}, "not valid yet"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"sub": None}, "'sub'"),
    ],
)
def test_bad_claims_are_refused(
    client: TestClient, private_key: rsa.RSAPrivateKey, claims: dict[str, Any], why: str
) -> None:
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in claims.items()}
    answer = _whoami(client, _token(private_key, **claims))
    assert answer.status_code == 401 and answer.json()["error_code"] == 40102
    assert why in answer.json()["detail"]


def test_alg_none_is_refused(client: TestClient) -> None:
    now = int(time.time())
    claims = {"sub": "root", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300}
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    token = f"{header}.{_b64(json.dumps(claims).encode())}."
    answer = _whoami(client, token)
    assert answer.status_code == 401 and "'none' is not accepted" in answer.json()["detail"]


def test_hs256_signed_with_the_public_key_is_refused(client: TestClient, public_pem: bytes) -> None:
    """The key-confusion attack: the RSA public key (which is public) used as an HMAC secret."""
    now = int(time.time())
    claims = {"sub": "root", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300}
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    answer = _whoami(client, f"{signing_input}.{_b64(signature)}")
    assert answer.status_code == 401 and "'HS256' is not accepted" in answer.json()["detail"]


def test_a_token_of_another_key_is_refused(client: TestClient) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = _whoami(client, _token(other))
    assert answer.status_code == 401 and answer.json()["error_code"] == 40102


def test_hmac_and_none_cannot_be_configured() -> None:
    for algorithms in ("none", "HS256", "RS256,HS512", ""):
        with pytest.raises(ValueError):
            Settings(oauthbearer_algorithms=algorithms)


def test_jwks_is_refetched_at_most_once_per_interval_for_unknown_kids(
    tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    fetches: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        fetches.append(url)
        return {"keys": [jwk]}

    now = [1000.0]
    settings = Settings(data_dir=tmp_path, oauthbearer_jwks_endpoint_url="https://idp.example/jwks",
                        oauthbearer_jwks_endpoint_refresh_ms=60_000)
    verifier = JwtVerifier(settings, fetch=fetch, clock=lambda: now[0])
    good = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, private_key, algorithm="RS256",
                      headers={"kid": "k1"})
    assert verifier.verify(good)[0] == "User:a"
    assert len(fetches) == 1
    unknown = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, private_key, algorithm="RS256",
                         headers={"kid": "made-up"})
    for _ in range(20):
        with pytest.raises(JwtError, match="not in the issuer's JWKS"):
            verifier.verify(unknown)
    assert len(fetches) == 1  # the fetch a moment ago counts: no new one within the interval
    now[0] += 61
    with pytest.raises(JwtError):
        verifier.verify(unknown)
    assert len(fetches) == 2
    assert verifier.verify(good)[0] == "User:a"  # known kid: no fetch
    assert len(fetches) == 2
