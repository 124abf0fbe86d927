"""Amazon SNS message signatures, which Anymail does not check (Amazon SES reports bounces,
complaints, deliveries, opens and clicks through SNS).

SNS signs every message it posts with the private key of a certificate it publishes at
`SigningCertURL`. We check, in this order:

1. `SignatureVersion` is "1" (RSA with SHA1) or "2" (RSA with SHA256);
2. `SigningCertURL` is https, on a host named sns.<region>.amazonaws.com (or .com.cn), and
   names a .pem file: a certificate from anywhere else would let anyone sign;
3. the certificate, fetched over verified TLS from that host and cached by URL, is in its
   validity period;
4. the signature matches the string AWS signs: "Key\\nValue\\n" for Message, MessageId,
   Subject (notifications, when present), SubscribeURL (confirmations), Timestamp, Token
   (confirmations), TopicArn and Type, in that order.

The certificate is trusted because it comes from an AWS host over HTTPS (as the AWS SDKs'
message validators do); we do not walk its chain. Any failure raises SnsSignatureInvalid.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

logger = logging.getLogger(__name__)

SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
CONFIRMATION_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
HTTP_TIMEOUT_SECONDS = 5
MAX_CERTIFICATE_BYTES = 64 * 1024
MAX_CACHED_CERTIFICATES = 32

_certificates: dict[str, x509.Certificate] = {}
_lock = threading.Lock()


class SnsSignatureInvalid(Exception):
    """The message was not signed by Amazon SNS, or was changed after signing."""


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical text SNS signs for this message type."""
    keys = CONFIRMATION_KEYS if message.get("Type") in CONFIRMATION_TYPES else NOTIFICATION_KEYS
    parts = []
    for key in keys:
        value = message.get(key)
        if value is None:
            if key == "Subject":  # the only optional key
                continue
            raise SnsSignatureInvalid(f"The SNS message has no {key}.")
        if not isinstance(value, str):
            raise SnsSignatureInvalid(f"The SNS message's {key} is not text.")
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def check_aws_url(url: Any, *, what: str = "SigningCertURL") -> str:
    """The URL if it is https on an SNS host of AWS, else SnsSignatureInvalid."""
    if not isinstance(url, str):
        raise SnsSignatureInvalid(f"The SNS message has no {what}.")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "https" or not SNS_HOST.match(host) or port not in (None, 443):
        raise SnsSignatureInvalid(f"{what} {url!r} is not an https URL of Amazon SNS.")
    if parts.username or parts.password:
        raise SnsSignatureInvalid(f"{what} {url!r} carries credentials.")
    return url


def verify(message: Mapping[str, Any], *, now: dt.datetime | None = None) -> None:
    """Raise SnsSignatureInvalid unless Amazon SNS signed this message (a parsed body)."""
    version = message.get("SignatureVersion")
    algorithm = HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise SnsSignatureInvalid(f"Unsupported SNS SignatureVersion {version!r}.")
    url = check_aws_url(message.get("SigningCertURL"))
    if not urlsplit(url).path.endswith(".pem"):
        raise SnsSignatureInvalid(f"SigningCertURL {url!r} does not name a .pem certificate.")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError) as error:
        raise SnsSignatureInvalid("The SNS Signature is not base64.") from error
    if not signature:
        raise SnsSignatureInvalid("The SNS message is not signed.")
    certificate = certificate_at(url)
    now = now or dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SnsSignatureInvalid("The SNS signing certificate has expired or is not valid yet.")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsSignatureInvalid("The SNS signing certificate does not hold an RSA key.")
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature as error:
        raise SnsSignatureInvalid("The SNS signature does not match the message.") from error


def certificate_at(url: str) -> x509.Certificate:
    """The certificate at `url`, fetched once per process (SNS rotates them rarely)."""
    with _lock:
        cached = _certificates.get(url)
    if cached is not None:
        return cached
    pem = fetch(url)
    if len(pem) > MAX_CERTIFICATE_BYTES:
        raise SnsSignatureInvalid("The SNS signing certificate is too large.")
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise SnsSignatureInvalid("SigningCertURL did not return a PEM certificate.") from error
    with _lock:
        if len(_certificates) >= MAX_CACHED_CERTIFICATES:
            _certificates.clear()
        _certificates[url] = certificate
    return certificate


def clear_cache() -> None:
    with _lock:
        _certificates.clear()


def fetch(url: str) -> bytes:
    """GET an https URL of Amazon SNS (verified TLS, no redirects). Tests replace this."""
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as error:
        raise SnsSignatureInvalid(f"Could not fetch {url}: {error}") from error
    if response.status_code != 200:
        raise SnsSignatureInvalid(f"{url} answered {response.status_code}.")
    return response.content


def confirm_subscription(message: Mapping[str, Any]) -> None:
    """Confirm an SNS subscription by visiting its SubscribeURL (what the SNS console's
    "confirm" does; no AWS credentials needed). Only for a verified, authenticated message."""
    url = check_aws_url(message.get("SubscribeURL"), what="SubscribeURL")
    fetch(url)
    logger.info("Confirmed the Amazon SNS subscription to %s", message.get("TopicArn"))
