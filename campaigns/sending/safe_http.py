"""Outgoing HTTP to URLs that workspace users typed in (webhook endpoints), without letting
them reach the installation's own network.

A URL is refused unless it is http(s) and every address its host resolves to is a public
internet address: loopback, private (RFC 1918, unique-local), link-local (169.254.0.0/16,
where cloud metadata services live, and fe80::/10), multicast, reserved, unspecified
(0.0.0.0, ::) and shared (100.64.0.0/10) addresses are refused, for IPv4 and IPv6 alike,
including IPv4 addresses wrapped in IPv6 (::ffff:127.0.0.1, 6to4, NAT64). The operator
setting WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true lifts the address rule (for an installation
whose receivers live on its own network, and for tests).

The name is resolved once, the addresses are vetted, and the connection goes to a vetted
address: a DNS answer that changes between the check and the connection (DNS rebinding)
cannot switch the request to another host. The request still carries the URL's host in
the Host header, and for https the TLS handshake sends it as SNI and verifies the
certificate against it. Redirects are never followed: a 3xx is the answer.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.exceptions import HTTPError as Urllib3Error

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
# How much of an answer is read at most; the rest is dropped unread.
MAX_READ = 64 * 1024
NAT64 = ipaddress.ip_network("64:ff9b::/96")
WHY_REFUSED = (
    "webhooks only go to public internet addresses (an operator can allow private "
    "networks with WEBHOOKS_ALLOW_PRIVATE_NETWORKS)"
)


class UnsafeURL(ValueError):
    """The URL may not be requested; the message says why, for the person who typed it."""


class RequestFailed(Exception):
    """No HTTP answer: the connection, the TLS handshake or the wait for an answer failed."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most the `keep` bytes asked for


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, without brackets
    port: int
    host_header: str
    path: str  # path and query
    addresses: tuple[str, ...]  # vetted, in the resolver's order
    authorization: str | None  # from user:password@ in the URL


def allow_private_networks() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False))


def address_problem(address: Address) -> str | None:
    """Why this address is not a public internet address, or None if it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (inside an IPv6 address)" if problem else None
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private network address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a public internet address"
    return None


def _resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the one seam tests patch)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def vet(url: str) -> Target:
    """Check `url` and resolve its host; raises UnsafeURL with a reason a person can act on."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"This URL is not valid: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL("Use an http:// or https:// URL.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("This URL has no host name.")
    port = port or (443 if scheme == "https" else 80)
    literal = _literal(host.split("%", 1)[0])
    if literal is not None:
        addresses = [str(literal)]
        shown = f"[{host}]" if ":" in host else host
        where = f"{shown} is"
    else:
        try:
            addresses = _resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeURL(f"{host} could not be resolved to an address.") from exc
        if not addresses:
            raise UnsafeURL(f"{host} could not be resolved to an address.")
        where = f"{host} resolves to"
    if not allow_private_networks():
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            problem = address_problem(address)
            if problem:
                what = f"{where} {text}, {problem}" if literal is None else f"{where} {problem}"
                raise UnsafeURL(f"{what}: {WHY_REFUSED}.")
    default_port = 443 if scheme == "https" else 80
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default_port else f"{bracketed}:{port}"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return Target(
        scheme=scheme,
        host=host,
        port=port,
        host_header=host_header,
        path=path,
        addresses=tuple(dict.fromkeys(addresses)),
        authorization=authorization,
    )


def check_url(url: str) -> None:
    """Raises UnsafeURL if a request to `url` would be refused (for forms, at save time)."""
    vet(url)


def _ca_certs() -> str:
    return certifi.where()


def _pool(target: Target, address: str, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
    if target.scheme == "https":
        # Connect to the vetted address; SNI and the certificate check use the URL's host.
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=_ca_certs(),
        )
    return urllib3.HTTPConnectionPool(
        address, target.port, timeout=timeout, retries=False, maxsize=1
    )


def post(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    keep: int = 2048,
) -> Answer:
    """POST `body` to `url` through the rules above and return the status and the first
    `keep` bytes of the answer. Raises UnsafeURL (refused, nothing sent) or RequestFailed
    (no answer within `timeout` seconds, refused connection, TLS failure)."""
    target = vet(url)
    deadline = time.monotonic() + timeout
    sent_headers = {**headers, "Host": target.host_header}
    if target.authorization and "Authorization" not in sent_headers:
        sent_headers["Authorization"] = target.authorization
    last_error: Exception | None = None
    for address in target.addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        pool = _pool(target, address, urllib3.Timeout(connect=min(left, 5.0), read=left))
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=sent_headers,
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:
            last_error = exc  # try the next vetted address
            continue
        except (Urllib3Error, OSError) as exc:
            pool.close()
            raise RequestFailed(_describe(exc, timeout)) from exc
        try:
            data = _read(response, keep, deadline)
        except (Urllib3Error, OSError) as exc:
            raise RequestFailed(_describe(exc, timeout)) from exc
        finally:
            response.release_conn()
            pool.close()
        return Answer(status=response.status, body=data)
    if last_error is not None:
        raise RequestFailed(_describe(last_error, timeout))
    raise RequestFailed(f"No answer within {timeout:g} seconds.")


def _read(response: urllib3.BaseHTTPResponse, keep: int, deadline: float) -> bytes:
    """Read up to MAX_READ bytes (keeping `keep`), giving up at the deadline: a receiver
    that trickles its answer cannot hold a worker past the timeout."""
    kept = bytearray()
    read = 0
    while read < MAX_READ and time.monotonic() < deadline:
        chunk = response.read(4096, decode_content=True)
        if not chunk:
            break
        read += len(chunk)
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    return bytes(kept)


def _describe(exc: BaseException, timeout: float) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    # NewConnectionError is a ConnectTimeoutError too: ask about it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"Could not connect: {text.split(': ', 1)[-1]}"
    if isinstance(exc, urllib3.exceptions.TimeoutError) or "timed out" in text.lower():
        return f"No answer within {timeout:g} seconds."
    if isinstance(reason, urllib3.exceptions.SSLError) or "certificate" in text.lower():
        return f"TLS failed: {text}"
    return f"{type(reason).__name__}: {text}"
