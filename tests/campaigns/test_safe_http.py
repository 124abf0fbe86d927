"""Outgoing requests to URLs that workspace users typed: only public addresses (unless the
operator allows private networks), only http(s), no redirects, the vetted address is the
one connected to, and TLS is checked against the URL's host. Every server here listens on
the loopback interface; refused requests never leave the process."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from campaigns.sending import safe_http

REAL_GETADDRINFO = socket.getaddrinfo


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request on the server; answers with the server's `reply`."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, headers, reply, delay = self.server.reply
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout test)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(
    host: str = "127.0.0.1",
    port: int = 0,
    reply: tuple = (200, {}, b"ok", 0),
    tls: ssl.SSLContext | None = None,
) -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer((host, port), Recorder)
    server.daemon_threads = True
    server.seen = []
    server.reply = reply
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def private_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True


def resolving(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Patch the resolver: names in `answers` resolve to those addresses; returns the log."""
    asked: list[str] = []

    def fake(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(f"unknown test name {host}")
        return answers[host]

    monkeypatch.setattr(safe_http, "_resolve", fake)
    return asked


# --- what is refused -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("http://127.9.9.9:8080/", "127.9.9.9 is a loopback address"),
        ("http://10.1.2.3/", "10.1.2.3 is a private network address"),
        ("http://172.16.0.5/", "172.16.0.5 is a private network address"),
        ("https://192.168.1.1/", "192.168.1.1 is a private network address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]/", "[::1] is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address (inside an IPv6 address)"),
        ("http://[::ffff:169.254.169.254]/", "a link-local address (inside an IPv6 address)"),
        ("http://[2002:7f00:1::1]/", "a loopback address (inside an IPv6 address)"),
        ("http://[fd00::1]/", "[fd00::1] is a private network address"),
        ("http://[fe80::1]/", "[fe80::1] is a link-local address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://[::]/", "[::] is an unspecified address"),
        ("http://224.0.0.251/", "224.0.0.251 is a multicast address"),
        ("http://[ff02::1]/", "[ff02::1] is a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1 is a private network address"),
        ("http://100.64.0.1/", "100.64.0.1 is not a public internet address"),
    ],
)
def test_private_and_special_addresses_are_refused_with_the_reason(url, reason):
    with pytest.raises(safe_http.UnsafeURL) as refused:
        safe_http.check_url(url)
    assert reason in str(refused.value)
    assert "public internet addresses" in str(refused.value)
    assert "WEBHOOKS_ALLOW_PRIVATE_NETWORKS" in str(refused.value)


def test_a_name_that_resolves_to_loopback_is_refused(monkeypatch):
    resolving(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})
    with pytest.raises(safe_http.UnsafeURL) as refused:
        safe_http.check_url("https://hooks.example.com/in")
    assert str(refused.value).startswith(
        "hooks.example.com resolves to 127.0.0.1, a loopback address:"
    )


def test_localhost_is_refused():
    with pytest.raises(safe_http.UnsafeURL, match=r"localhost resolves to .*loopback"):
        safe_http.check_url("http://localhost:8000/")


def test_a_name_with_one_private_address_among_public_ones_is_refused(monkeypatch):
    resolving(monkeypatch, {"mixed.example.com": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(safe_http.UnsafeURL, match=r"resolves to 10\.0\.0\.7, a private network"):
        safe_http.check_url("https://mixed.example.com/")


def test_a_public_name_passes(monkeypatch):
    resolving(monkeypatch, {"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    target = safe_http.vet("https://hooks.example.com/in?x=1")
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    assert target.host_header == "hooks.example.com"
    assert target.path == "/in?x=1"


def test_a_name_that_does_not_resolve_is_refused(monkeypatch):
    resolving(monkeypatch, {})
    with pytest.raises(safe_http.UnsafeURL, match=r"nowhere\.example could not be resolved"):
        safe_http.check_url("https://nowhere.example/")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "Use an http:// or https:// URL."),
        ("file:///etc/passwd", "Use an http:// or https:// URL."),
        ("gopher://127.0.0.1:6379/", "Use an http:// or https:// URL."),
        ("http:///path", "This URL has no host name."),
        ("http://example.com:99999/", "This URL is not valid"),
    ],
)
def test_other_schemes_and_broken_urls_are_refused(url, reason):
    with pytest.raises(safe_http.UnsafeURL, match=reason):
        safe_http.check_url(url)


def test_a_refused_request_sends_nothing():
    with serving() as server:
        port = server.server_address[1]
        with pytest.raises(safe_http.UnsafeURL):
            safe_http.post(f"http://127.0.0.1:{port}/", body=b"{}", headers={}, timeout=2)
    assert server.seen == []


# --- with private networks allowed (the operator's setting) ------------------------------


def test_the_setting_lets_a_local_receiver_get_the_request(private_allowed):
    with serving(reply=(201, {}, b"thanks", 0)) as server:
        port = server.server_address[1]
        answer = safe_http.post(
            f"http://127.0.0.1:{port}/hooks/in?team=1",
            body=b'{"a":1}',
            headers={"Content-Type": "application/json", "X-Test": "yes"},
            timeout=5,
        )
    assert answer == safe_http.Answer(status=201, body=b"thanks")
    [seen] = server.seen
    assert seen["path"] == "/hooks/in?team=1"
    assert seen["body"] == b'{"a":1}'
    assert seen["headers"]["X-Test"] == "yes"
    assert seen["headers"]["Host"] == f"127.0.0.1:{port}"


def test_ipv6_loopback_works_when_allowed(private_allowed):
    class V6(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    try:
        server = V6(("::1", 0), Recorder)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server.seen, server.reply = [], (204, {}, b"", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        answer = safe_http.post(f"http://[::1]:{port}/", body=b"x", headers={}, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status == 204
    assert server.seen[0]["headers"]["Host"] == f"[::1]:{port}"


def test_the_connection_goes_to_the_vetted_address_and_keeps_the_host_name(
    private_allowed, monkeypatch
):
    """DNS rebinding: the name is resolved once; a later answer that points elsewhere
    (here another loopback address with a server of its own) is never used."""
    with serving("127.0.0.1") as good:
        port = good.server_address[1]
        with serving("127.0.0.2", port) as elsewhere:
            answers = iter([["127.0.0.1"]])

            def fake_resolve(host: str, port: int) -> list[str]:
                return next(answers, ["127.0.0.2"])

            def fake_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
                if host == "hooks.test":
                    return REAL_GETADDRINFO("127.0.0.2", *args, **kwargs)
                return REAL_GETADDRINFO(host, *args, **kwargs)

            monkeypatch.setattr(safe_http, "_resolve", fake_resolve)
            monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
            answer = safe_http.post(f"http://hooks.test:{port}/in", body=b"", headers={}, timeout=5)
    assert answer.status == 200
    assert len(good.seen) == 1
    assert good.seen[0]["headers"]["Host"] == f"hooks.test:{port}"
    assert elsewhere.seen == []


def test_redirects_are_not_followed(private_allowed):
    with serving() as server:
        port = server.server_address[1]
        server.reply = (302, {"Location": f"http://127.0.0.1:{port}/elsewhere"}, b"", 0)
        answer = safe_http.post(f"http://127.0.0.1:{port}/in", body=b"", headers={}, timeout=5)
    assert answer.status == 302
    assert [seen["path"] for seen in server.seen] == ["/in"]


def test_only_the_first_bytes_of_the_answer_are_kept(private_allowed):
    with serving(reply=(500, {}, b"x" * 10_000, 0)) as server:
        port = server.server_address[1]
        answer = safe_http.post(f"http://127.0.0.1:{port}/", body=b"", headers={}, timeout=5)
    assert answer.status == 500
    assert answer.body == b"x" * 2048


def test_a_slow_receiver_times_out(private_allowed):
    with serving(reply=(200, {}, b"late", 2)) as server:
        port = server.server_address[1]
        started = time.monotonic()
        with pytest.raises(safe_http.RequestFailed, match=r"No answer within 0.5 seconds"):
            safe_http.post(f"http://127.0.0.1:{port}/", body=b"", headers={}, timeout=0.5)
    assert time.monotonic() - started < 1.9


def test_a_closed_port_is_a_failed_request(private_allowed):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(safe_http.RequestFailed, match="Could not connect"):
        safe_http.post(f"http://127.0.0.1:{port}/", body=b"", headers={}, timeout=2)


# --- TLS: SNI and the certificate are checked against the URL's host ---------------------


def _certificate(tmp_path, name: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def _tls_server_context(cert: str, key: str, server_names: list) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    return context


def test_https_sends_sni_and_verifies_the_certificate_for_the_host(
    private_allowed, monkeypatch, tmp_path
):
    cert, key = _certificate(tmp_path, "hooks.test")
    names: list = []
    monkeypatch.setattr(safe_http, "_ca_certs", lambda: cert)
    resolving(monkeypatch, {"hooks.test": ["127.0.0.1"]})
    with serving(tls=_tls_server_context(cert, key, names)) as server:
        port = server.server_address[1]
        answer = safe_http.post(f"https://hooks.test:{port}/in", body=b"{}", headers={}, timeout=5)
    assert answer.status == 200
    assert names == ["hooks.test"]
    assert server.seen[0]["headers"]["Host"] == f"hooks.test:{port}"


def test_https_refuses_a_certificate_for_another_host(private_allowed, monkeypatch, tmp_path):
    cert, key = _certificate(tmp_path, "other.test")
    monkeypatch.setattr(safe_http, "_ca_certs", lambda: cert)
    resolving(monkeypatch, {"hooks.test": ["127.0.0.1"]})
    with serving(tls=_tls_server_context(cert, key, [])) as server:
        port = server.server_address[1]
        with pytest.raises(safe_http.RequestFailed, match="TLS failed"):
            safe_http.post(f"https://hooks.test:{port}/in", body=b"{}", headers={}, timeout=5)
    assert server.seen == []


def test_address_problem_accepts_public_addresses():
    for text in ("93.184.216.34", "2606:2800:220:1::1", "1.1.1.1"):
        assert safe_http.address_problem(ipaddress.ip_address(text)) is None
