"""The API's bearer tokens: JWTs verified for signature, expiry, audience and issuer, turned into a
`rules.access.Principal`; and development tokens for the embedded run (`reghub token`).

Keys come from settings: an HMAC secret (HS256, the embedded run and tests), an issuer's PEM public key,
or its JWKS URL (production). The accepted algorithms follow the key: a secret accepts only HMAC, a
public key only RSA/EC, so a token can never choose `none` or turn a public key into an HMAC secret.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from rules.access import ROLES, Principal, Role
from rules.identifiers import contains_person_number, normalise_person_key, parse_person_key
from rules.treatment_places.identifiers import is_authorisation_id, is_cvr

HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"]
PUBLIC_KEY_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "role"]
_PHARMACY_NUMBER = re.compile(r"\d{5}")
_REGISTRANT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")  # as the registration events carry it


class TokenRefused(Exception):
    """The token is missing, malformed, unverifiable or lacks what its role needs (HTTP 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenKeys:
    """How tokens are verified: exactly one of `secret`, `public_key`, `jwks_url` is normally set."""

    audience: str
    issuer: str
    secret: bytes | None = None
    public_key: str | None = None
    jwks_url: str | None = None
    leeway_seconds: int = 30

    @property
    def configured(self) -> bool:
        return bool(self.secret or self.public_key or self.jwks_url)


class TokenVerifier:
    """Verifies bearer tokens; keeps the JWKS client (and its key cache) for the process's life."""

    def __init__(self, keys: TokenKeys) -> None:
        self.keys = keys
        self._jwks = jwt.PyJWKClient(keys.jwks_url, cache_keys=True) if keys.jwks_url else None

    async def principal(self, authorization: str | None) -> Principal:
        """The caller of a request with this `Authorization` header.

        Raises:
            TokenRefused: with a reason for the caller (it quotes no claim value).
        """
        if not self.keys.configured:
            raise TokenRefused("the API has no token key configured: no token can be verified")
        if not authorization:
            raise TokenRefused("an Authorization: Bearer token is required")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRefused("the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        if self._jwks is not None:
            try:
                signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWTError as exc:
                raise TokenRefused(
                    f"token: no key of the issuer verifies it ({_kind(exc)})"
                ) from None
            return self._claims(token, signing.key, PUBLIC_KEY_ALGORITHMS)
        if self.keys.secret:
            return self._claims(token, self.keys.secret, HMAC_ALGORITHMS)
        assert self.keys.public_key is not None
        return self._claims(token, self.keys.public_key, PUBLIC_KEY_ALGORITHMS)

    def _claims(self, token: str, key: Any, algorithms: list[str]) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.keys.audience,
                issuer=self.keys.issuer,
                leeway=self.keys.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token: expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("token: not issued for this API (audience)") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("token: not from the expected issuer") from None
        except jwt.InvalidAlgorithmError:
            raise TokenRefused(
                f"token: algorithm not accepted (only {', '.join(algorithms)})"
            ) from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("token: the signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(f"token: the claim '{exc.claim}' is required") from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"token: invalid ({_kind(exc)})") from None
        return principal_of(claims)


def principal_of(claims: dict[str, Any]) -> Principal:
    """The principal a verified token's claims name; its role's identifier is checked for form.

    Raises:
        TokenRefused: an unknown role, or the role's identifier missing or malformed.
    """
    role = claims.get("role")
    if role not in ROLES:
        raise TokenRefused(f"token: the role must be one of {', '.join(ROLES)}")
    subject = str(claims["sub"])
    if role == "pharmacy":
        number = claims.get("pharmacy_number")
        if not isinstance(number, str) or not _PHARMACY_NUMBER.fullmatch(number):
            raise TokenRefused("token: a pharmacy's token needs its 5-digit 'pharmacy_number'")
        return Principal("pharmacy", subject, pharmacy_number=number)
    if role == "doctor":
        authorisation = claims.get("authorisation_id")
        if not isinstance(authorisation, str) or not is_authorisation_id(authorisation):
            raise TokenRefused("token: a doctor's token needs a valid 'authorisation_id'")
        return Principal("doctor", subject, authorisation_id=authorisation)
    if role == "citizen":
        cpr = claims.get("cpr")
        try:
            if not isinstance(cpr, str):
                raise ValueError("not a string")
            parse_person_key(cpr)
        except ValueError:
            raise TokenRefused("token: a citizen's token needs their 'cpr'") from None
        return Principal("citizen", subject, cpr=normalise_person_key(cpr))
    if role == "registrant":
        return Principal("registrant", subject, company_key=_company_key(claims))
    return Principal(role, subject)  # type: ignore[arg-type]


def _company_key(claims: dict[str, Any]) -> str:
    """A registrant's company key: its `cvr`, or without one the `registrant_id` its events carry.

    Raises:
        TokenRefused: neither, both, or one of the wrong form.
    """
    cvr, registrant = claims.get("cvr"), claims.get("registrant_id")
    if (cvr is None) == (registrant is None):
        raise TokenRefused("token: a registrant's token needs its 'cvr' or its 'registrant_id'")
    if cvr is not None:
        if not isinstance(cvr, str) or not is_cvr(cvr):
            raise TokenRefused("token: 'cvr' is not a CVR number")
        return cvr
    if (
        not isinstance(registrant, str)
        or not _REGISTRANT_ID.fullmatch(registrant)
        or contains_person_number(registrant)
    ):
        raise TokenRefused("token: 'registrant_id' is not a registrant id")
    return registrant


def mint(
    secret: bytes,
    role: Role,
    subject: str,
    *,
    audience: str,
    issuer: str,
    ttl: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    **identifiers: str,
) -> str:
    """A development token (HS256) for `role`, with the role's identifier (`pharmacy_number`,
    `authorisation_id`, `cpr`, or a registrant's `cvr` or `registrant_id`) among `identifiers`."""
    at = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role,
        "iat": int(at.timestamp()),
        "exp": int((at + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        **identifiers,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _kind(exc: Exception) -> str:
    """An error's kind without its text: PyJWT's messages may quote token content."""
    return type(exc).__name__
