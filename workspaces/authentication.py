"""API key authentication: `Authorization: Bearer <key>`, or HTTP Basic with the key as the
user name (how Segment's libraries send their write key)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiKey
from .services import touch_api_key


@dataclass(frozen=True)
class ApiKeyUser:
    """`request.user` for a request made with an API key: authenticated, not a person."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True
    is_staff: bool = False
    pk: None = None

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


def key_from_header(header: str) -> str:
    """The raw key in an Authorization header; AuthenticationFailed says what is wrong."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        key = credentials
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise exceptions.AuthenticationFailed(
                "Malformed Basic credentials: expected base64 of “<api key>:”."
            ) from exc
        key = decoded.partition(":")[0]
    else:
        raise exceptions.AuthenticationFailed(
            "Unsupported Authorization scheme: use “Bearer <api key>” or HTTP Basic "
            "with the API key as the user name."
        )
    if not key:
        raise exceptions.AuthenticationFailed("The Authorization header carries no API key.")
    return key


def find_api_key(raw_key: str) -> ApiKey:
    prefix, dot, _ = raw_key.partition(".")
    api_key = (
        ApiKey.all_workspaces.select_related("workspace").filter(prefix=prefix).first()
        if dot
        else None
    )
    if api_key is None or not api_key.is_valid(raw_key):
        raise exceptions.AuthenticationFailed("Invalid API key.")
    if api_key.revoked:
        raise exceptions.AuthenticationFailed("This API key was revoked; create a new one.")
    if api_key.has_expired:
        raise exceptions.AuthenticationFailed("This API key has expired; create a new one.")
    return api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyUser, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        api_key = find_api_key(key_from_header(header))
        touch_api_key(api_key)
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="mailpath"'
