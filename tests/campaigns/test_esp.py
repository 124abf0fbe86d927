"""ESP connections per workspace: credentials encrypted at rest (tamper-evident, with key
rotation), the connection factory for every provider, the Sending settings page (secrets
never shown, a test send through a real HTTP ESP API served by the mock ESP, the ESP's
error shown without a 500, pause and resume) and who may do what."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from anymail.backends.brevo import EmailBackend as BrevoBackend
from anymail.backends.mailgun import EmailBackend as MailgunBackend
from anymail.backends.mailjet import EmailBackend as MailjetBackend
from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.backends.resend import EmailBackend as ResendBackend
from anymail.backends.sparkpost import EmailBackend as SparkPostBackend
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.test import Client
from django.urls import reverse

from campaigns.models import ConnectionStatus, EspConnection
from campaigns.sending import esp, secrets
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
TOKEN = "pm-server-token-7f3a9c"
ROOT = Path(__file__).resolve().parents[2]
MOCK_ESP = Path(os.environ.get("MAILPATH_MOCK_ESP", "/work/shared/tools/mock_esp.py"))


def page(name, workspace):
    return reverse(name, kwargs={"workspace_slug": workspace.slug})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def mock_esp():
    """The shared mock ESP (Postmark's API among others) on a free local port."""
    if not MOCK_ESP.exists():
        pytest.skip(f"the mock ESP is not at {MOCK_ESP} (set MAILPATH_MOCK_ESP)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(MOCK_ESP), "--port", str(port), "--latency-ms", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                get_json(f"{url}/_stats")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the mock ESP did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=5)


@pytest.fixture
def esp_url(mock_esp):
    reset = urllib.request.Request(f"{mock_esp}/_reset", method="POST")
    with urllib.request.urlopen(reset, timeout=5):
        pass
    return mock_esp


def connect_postmark(workspace, api_url, token=TOKEN):
    return esp.save_connection(
        workspace,
        provider="postmark",
        secrets_entered={"server_token": token},
        options={"api_url": api_url},
        rate_per_second=50,
    )


def connection_of(workspace) -> EspConnection:
    return EspConnection.objects.for_workspace(workspace).get()


# --- encryption ---------------------------------------------------------------------------


def test_credentials_survive_a_round_trip_and_are_not_readable_in_the_token():
    data = {"server_token": TOKEN, "note": "ünïcode"}
    token = secrets.encrypt(data)
    assert TOKEN not in token
    assert secrets.decrypt(token) == data
    assert secrets.decrypt("") == {}


def test_a_tampered_value_is_refused_with_a_clear_error():
    token = secrets.encrypt({"api_key": "key-123"})
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    for bad in (flipped, token[:-4], "not-a-token", "ünïcode"):
        with pytest.raises(secrets.CredentialsUnreadable, match="cannot be decrypted"):
            secrets.decrypt(bad)


def test_key_rotation_new_key_first_old_key_still_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAILPATH_ENCRYPTION_KEY = [old]
    token = secrets.encrypt({"api_key": "k1"})

    settings.MAILPATH_ENCRYPTION_KEY = [new, old]
    assert secrets.decrypt(token) == {"api_key": "k1"}
    rotated = secrets.reencrypt(token)
    fresh = secrets.encrypt({"api_key": "k2"})

    settings.MAILPATH_ENCRYPTION_KEY = [new]
    assert secrets.decrypt(rotated) == {"api_key": "k1"}
    assert secrets.decrypt(fresh) == {"api_key": "k2"}
    with pytest.raises(secrets.CredentialsUnreadable):
        secrets.decrypt(token)  # only the dropped key opens it


def test_without_a_configured_key_the_key_comes_from_secret_key(settings):
    settings.MAILPATH_ENCRYPTION_KEY = []
    token = secrets.encrypt({"api_key": "k"})
    settings.SECRET_KEY = "another-secret-key-that-is-long-enough-123"
    with pytest.raises(secrets.CredentialsUnreadable):
        secrets.decrypt(token)
    settings.SECRET_KEY_FALLBACKS = ["tests-only-secret-key-not-for-production"]
    assert secrets.decrypt(token) == {"api_key": "k"}


def test_reencrypt_credentials_moves_every_workspace_to_the_new_key(
    settings, workspace_a, workspace_b
):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAILPATH_ENCRYPTION_KEY = [old]
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    connect_postmark(workspace_b, "https://api.postmarkapp.com/", token="bloom-token")
    settings.MAILPATH_ENCRYPTION_KEY = [new, old]
    assert esp.reencrypt_credentials() == (2, 0)
    settings.MAILPATH_ENCRYPTION_KEY = [new]
    assert esp.credentials_of(connection_of(workspace_b)) == {"server_token": "bloom-token"}


@pytest.mark.parametrize("value", ["short", "not base64 at all!!", "a" * 44 + ",zz"])
def test_a_malformed_encryption_key_stops_start_up(value):
    env = {**os.environ, "MAILPATH_ENCRYPTION_KEY": value, "DEBUG": "true"}
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "MAILPATH_ENCRYPTION_KEY" in result.stderr


# --- storing a connection -----------------------------------------------------------------


def test_stored_credentials_are_not_plain_text_in_the_database(workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    raw = EspConnection.objects.for_workspace(workspace_a).values_list("credentials", flat=True)
    assert TOKEN not in raw[0]
    assert esp.credentials_of(connection_of(workspace_a)) == {"server_token": TOKEN}
    assert connection_of(workspace_a).webhook_secret


def test_a_blank_secret_keeps_the_stored_one_but_not_across_providers(workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    esp.save_connection(
        workspace_a,
        provider="postmark",
        secrets_entered={"server_token": ""},
        options={"message_stream": "broadcast"},
        rate_per_second=10,
    )
    connection = connection_of(workspace_a)
    assert esp.credentials_of(connection) == {"server_token": TOKEN}
    assert connection.settings["message_stream"] == "broadcast"
    assert connection.rate_per_second == 10

    with pytest.raises(ValidationError) as caught:
        esp.save_connection(
            workspace_a,
            provider="sendgrid",
            secrets_entered={"api_key": ""},
            options={},
            rate_per_second=10,
        )
    assert "api_key" in caught.value.message_dict
    connection = connection_of(workspace_a)
    assert connection.provider == "postmark"  # nothing written
    assert esp.credentials_of(connection) == {"server_token": TOKEN}


def test_changing_the_settings_resets_the_status_to_not_tested(workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    esp.mark_failing(workspace_a, "401 bad token")
    connect_postmark(workspace_a, "https://api.postmarkapp.com/", token="a-new-token")
    connection = connection_of(workspace_a)
    assert connection.status == ConnectionStatus.UNTESTED
    assert connection.last_error == ""


def test_bad_options_are_field_errors(workspace_a):
    with pytest.raises(ValidationError) as caught:
        esp.save_connection(
            workspace_a,
            provider="smtp",
            secrets_entered={},
            options={"host": "", "port": "seventy", "security": "maybe"},
            rate_per_second=0,
        )
    errors = caught.value.message_dict
    assert set(errors) == {"host", "port", "security", "rate_per_second"}
    assert not EspConnection.objects.for_workspace(workspace_a).exclude(provider="sandbox")


# --- the connection factory ---------------------------------------------------------------

CASES = [
    (
        "postmark",
        {"server_token": "pm-1"},
        {"message_stream": "broadcast"},
        PostmarkBackend,
        {
            "server_token": "pm-1",
            "message_stream": "broadcast",
            "api_url": "https://api.postmarkapp.com/",
        },
    ),
    (
        "mailgun",
        {"api_key": "mg-1", "webhook_signing_key": "whk"},
        {"sender_domain": "mg.example.com", "api_url": "https://api.eu.mailgun.net/v3"},
        MailgunBackend,
        {
            "api_key": "mg-1",
            "sender_domain": "mg.example.com",
            "api_url": "https://api.eu.mailgun.net/v3/",
        },
    ),
    (
        "brevo",
        {"api_key": "xkeysib-1"},
        {},
        BrevoBackend,
        {"api_key": "xkeysib-1", "api_url": "https://api.brevo.com/v3/"},
    ),
    (
        "sparkpost",
        {"api_key": "sp-1"},
        {"api_url": "https://api.eu.sparkpost.com/api/v1/", "subaccount": "42"},
        SparkPostBackend,
        {"api_key": "sp-1", "subaccount": "42", "api_url": "https://api.eu.sparkpost.com/api/v1/"},
    ),
    (
        "mailjet",
        {"api_key": "mj-1", "secret_key": "mj-2"},
        {},
        MailjetBackend,
        {"api_key": "mj-1", "secret_key": "mj-2", "api_url": "https://api.mailjet.com/v3.1/"},
    ),
    (
        "resend",
        {"api_key": "re_1", "signing_secret": "whsec_x"},
        {},
        ResendBackend,
        {"api_key": "re_1", "api_url": "https://api.resend.com/"},
    ),
    (
        "smtp",
        {"password": "smtp-pass"},
        {"host": "smtp.example.com", "port": "465", "username": "u", "security": "ssl"},
        SmtpBackend,
        {
            "host": "smtp.example.com",
            "port": 465,
            "username": "u",
            "password": "smtp-pass",
            "use_ssl": True,
            "use_tls": False,
            "timeout": esp.SMTP_TIMEOUT_SECONDS,
        },
    ),
]


@pytest.mark.parametrize(("key", "entered", "options", "backend_class", "expected"), CASES)
def test_connection_for_builds_the_provider_backend_with_its_credentials(
    workspace_a, key, entered, options, backend_class, expected
):
    esp.save_connection(
        workspace_a, provider=key, secrets_entered=entered, options=options, rate_per_second=5
    )
    connection, provider_key = esp.connection_for(workspace_a)
    assert provider_key == key
    assert type(connection) is backend_class
    assert {name: getattr(connection, name) for name in expected} == expected
    if key != "smtp":
        assert connection.timeout == esp.HTTP_TIMEOUT_SECONDS
    # Webhook signing keys are stored for the webhooks, not handed to the backend.
    assert not hasattr(connection, "webhook_signing_key")
    assert not hasattr(connection, "signing_secret")


def test_sendgrid_backend_gets_its_api_key(workspace_a):
    from anymail.backends.sendgrid import EmailBackend as SendGridBackend

    esp.save_connection(
        workspace_a,
        provider="sendgrid",
        secrets_entered={"api_key": "SG.1"},
        options={"api_url": "https://api.eu.sendgrid.com/v3/"},
        rate_per_second=5,
    )
    with pytest.warns(Warning, match="SendGrid"):  # Anymail no longer tests SendGrid
        connection, key = esp.connection_for(workspace_a)
    assert (type(connection), key) == (SendGridBackend, "sendgrid")
    assert (connection.api_key, connection.api_url) == ("SG.1", "https://api.eu.sendgrid.com/v3/")


def test_amazon_ses_gets_boto3_client_params(workspace_a):
    esp.save_connection(
        workspace_a,
        provider="amazon_ses",
        secrets_entered={"access_key": "AKIA1", "secret_key": "s3cr3t"},
        options={"region": "eu-west-1", "configuration_set_name": "mailpath"},
        rate_per_second=14,
    )
    provider = esp.PROVIDERS["amazon_ses"]
    values = {
        **connection_of(workspace_a).settings,
        **esp.credentials_of(connection_of(workspace_a)),
    }
    assert provider.backend_kwargs(values) == {
        "client_params": {
            "aws_access_key_id": "AKIA1",
            "aws_secret_access_key": "s3cr3t",
            "region_name": "eu-west-1",
        },
        "configuration_set_name": "mailpath",
    }
    pytest.importorskip("boto3")
    connection, key = esp.connection_for(workspace_a)
    assert key == "amazon_ses"
    assert connection.client_params["aws_access_key_id"] == "AKIA1"
    assert connection.client_params["region_name"] == "eu-west-1"
    assert connection.configuration_set_name == "mailpath"


def test_sandbox_and_no_connection_use_the_installation_backend(workspace_a):
    connection, key = esp.connection_for(workspace_a)
    assert (type(connection), key) == (LocmemBackend, "sandbox")  # pytest-django's backend
    esp.connection_settings(workspace_a)
    connection, key = esp.connection_for(workspace_a)
    assert (type(connection), key) == (LocmemBackend, "sandbox")


def test_an_installation_wide_esp_backend_reports_its_provider(settings, workspace_a):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "platform"}
    connection, key = esp.connection_for(workspace_a)
    assert (type(connection), key) == (PostmarkBackend, "postmark")
    assert esp.PROVIDERS[key].batch_limit == 500


def fake_factory(workspace):
    return LocmemBackend(), f"fake:{workspace.slug}"


def test_the_connection_factory_is_swappable(settings, workspace_a):
    settings.MAILPATH_CONNECTION_FACTORY = "tests.campaigns.test_esp.fake_factory"
    assert esp.connection_for(workspace_a)[1] == "fake:acme"


def test_a_paused_or_failing_connection_is_still_returned(workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    assert not esp.is_paused(workspace_a)
    assert esp.sending_hold(workspace_a) is None
    esp.pause_sending(workspace_a)
    assert esp.is_paused(workspace_a)
    assert "paused" in esp.sending_hold(workspace_a)
    assert esp.connection_for(workspace_a)[1] == "postmark"
    esp.resume_sending(workspace_a)
    esp.mark_failing(workspace_a, "Postmark API response 401: bad token")
    assert "failing: Postmark API response 401" in esp.sending_hold(workspace_a)
    assert esp.connection_for(workspace_a)[1] == "postmark"
    esp.mark_ok(workspace_a)
    assert esp.sending_hold(workspace_a) is None


def test_unreadable_credentials_fail_with_a_clear_error(workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    EspConnection.objects.for_workspace(workspace_a).update(credentials="gAAAAAtampered")
    with pytest.raises(secrets.CredentialsUnreadable):
        esp.connection_for(workspace_a)


def test_error_text_never_carries_a_stored_secret(workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    error = RuntimeError(f"401: token {TOKEN} is not valid")
    text = esp.describe_error(error, connection_of(workspace_a))
    assert text == "RuntimeError: 401: token •••• is not valid"


def test_provider_table_covers_every_model_choice():
    from campaigns.models import EspProvider

    assert set(esp.PROVIDERS) == set(EspProvider.values)
    assert esp.PROVIDERS["postmark"].batch_limit == 500
    assert {k for k, p in esp.PROVIDERS.items() if p.batch_limit > 1} == {"postmark"}
    assert {k for k, p in esp.PROVIDERS.items() if p.idempotency} == {"resend"}


# --- the settings page --------------------------------------------------------------------


def test_admin_connects_postmark_and_the_test_send_delivers(owner_client, workspace_a, esp_url):
    connect_postmark(workspace_a, esp_url)
    response = owner_client.post(page("esp_send_test", workspace_a), follow=True)
    assert response.status_code == 200
    assert get_json(f"{esp_url}/_stats")["messages"] == 1
    sent = get_json(f"{esp_url}/_messages")[0]
    assert sent["to"] == "owner@acme.example"
    connection = connection_of(workspace_a)
    assert connection.status == ConnectionStatus.OK
    assert connection.checked_at is not None
    body = response.content.decode()
    assert "Test sent to owner@acme.example" in body
    assert 'data-testid="esp-badge">Working' in body


def test_an_unreachable_esp_records_failing_and_shows_why(owner_client, workspace_a):
    dead = f"http://127.0.0.1:{free_port()}/"
    connect_postmark(workspace_a, dead)
    response = owner_client.post(page("esp_send_test", workspace_a), follow=True)
    assert response.status_code == 200
    connection = connection_of(workspace_a)
    assert connection.status == ConnectionStatus.FAILING
    assert f"Error posting to {dead}email" in connection.last_error
    body = response.content.decode()
    assert 'data-testid="esp-badge">Failing' in body
    assert f"Error posting to {dead}email" in body
    assert TOKEN not in body
    assert "paused" not in esp.sending_hold(workspace_a)


def test_an_esp_api_error_is_shown_in_the_htmx_answer(owner_client, workspace_a, esp_url):
    connect_postmark(workspace_a, f"{esp_url}/wrong/")  # the ESP answers 404
    response = owner_client.post(page("esp_send_test", workspace_a), headers=HTMX)
    assert response.status_code == 422
    body = response.content.decode()
    assert "Postmark API response 404" in body
    assert "no such endpoint: /wrong/email" in body
    assert "The test was not sent" in body
    assert connection_of(workspace_a).status == ConnectionStatus.FAILING
    # Fixing the endpoint and testing again makes it work.
    connect_postmark(workspace_a, esp_url)
    response = owner_client.post(page("esp_send_test", workspace_a), headers=HTMX)
    assert response.status_code == 200
    assert connection_of(workspace_a).status == ConnectionStatus.OK


def test_sandbox_test_send_lands_in_the_sandbox_inbox(owner_client, workspace_a, settings):
    from workspaces.models import SandboxMessage

    settings.EMAIL_BACKEND = "workspaces.sandbox.SandboxEmailBackend"
    response = owner_client.post(page("esp_send_test", workspace_a), follow=True)
    assert "find it in the Sandbox inbox" in response.content.decode()
    assert SandboxMessage.objects.for_workspace(workspace_a).get().to == ["owner@acme.example"]
    assert connection_of(workspace_a).status == ConnectionStatus.OK


def test_admin_saves_credentials_on_the_page_and_they_are_never_shown(admin_client_a, workspace_a):
    url = page("esp_settings", workspace_a)
    response = admin_client_a.post(
        url,
        {
            "provider": "postmark",
            "server_token": TOKEN,
            "message_stream": "broadcast",
            "api_url": "https://api.postmarkapp.com/",
            "rate_per_second": "25",
        },
    )
    assert response.status_code == 302
    connection = connection_of(workspace_a)
    assert esp.credentials_of(connection) == {"server_token": TOKEN}
    assert (connection.provider, connection.rate_per_second) == ("postmark", 25)

    body = admin_client_a.get(url).content.decode()
    assert TOKEN not in body
    assert connection.credentials not in body
    assert "••••  set" in body
    assert "/anymail/postmark/tracking/" in body
    assert connection.webhook_secret in body

    # A save with the secret left blank keeps it; a form error never echoes a typed secret.
    response = admin_client_a.post(
        url,
        {
            "provider": "postmark",
            "server_token": "typed-but-refused-9d1",
            "api_url": "https://api.postmarkapp.com/",
            "rate_per_second": "0",
        },
    )
    assert response.status_code == 400
    assert "typed-but-refused-9d1" not in response.content.decode()
    assert esp.credentials_of(connection_of(workspace_a)) == {"server_token": TOKEN}
    response = admin_client_a.post(
        url,
        {"provider": "postmark", "server_token": "", "api_url": "https://api.postmarkapp.com/",
         "rate_per_second": "30"},
    )  # fmt: skip
    assert response.status_code == 302
    assert esp.credentials_of(connection_of(workspace_a)) == {"server_token": TOKEN}


def test_a_missing_required_secret_is_a_field_error(owner_client, workspace_a):
    response = owner_client.post(
        page("esp_settings", workspace_a),
        {"provider": "mailjet", "api_key": "only-half", "rate_per_second": "10",
         "api_url": "https://api.mailjet.com/v3.1/"},
        headers=HTMX,
    )  # fmt: skip
    assert response.status_code == 422
    body = response.content.decode()
    assert "Enter the secret key." in body
    assert "only-half" not in body
    assert not EspConnection.objects.for_workspace(workspace_a).exists()


def test_the_page_only_offers_the_esps_own_endpoints_and_public_smtp_hosts(
    owner_client, workspace_a
):
    url = page("esp_settings", workspace_a)
    response = owner_client.post(
        url,
        {"provider": "postmark", "server_token": "t", "api_url": "http://127.0.0.1:9/",
         "rate_per_second": "10"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    for host in ("localhost", "127.0.0.1", "10.0.0.5", "169.254.169.254", "[::1]"):
        response = owner_client.post(
            url,
            {"provider": "smtp", "host": host, "port": "25", "security": "none",
             "rate_per_second": "10"},
        )  # fmt: skip
        assert response.status_code == 400, host
        assert "not a local or private address" in response.content.decode()
    assert not EspConnection.objects.for_workspace(workspace_a).exists()


def test_unreadable_credentials_show_on_the_page_instead_of_a_500(owner_client, workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    EspConnection.objects.for_workspace(workspace_a).update(credentials="gAAAAAtampered")
    url = page("esp_settings", workspace_a)
    assert owner_client.get(url).status_code == 200
    response = owner_client.post(page("esp_send_test", workspace_a), follow=True)
    assert "cannot be decrypted" in response.content.decode()
    assert connection_of(workspace_a).status == ConnectionStatus.FAILING
    # Saving without the token asks for it again; entering it repairs the connection.
    data = {"provider": "postmark", "api_url": "https://api.postmarkapp.com/",
            "rate_per_second": "50"}  # fmt: skip
    assert owner_client.post(url, data).status_code == 400
    assert owner_client.post(url, {**data, "server_token": "fresh"}).status_code == 302
    assert esp.credentials_of(connection_of(workspace_a)) == {"server_token": "fresh"}


def test_switching_back_to_the_sandbox_drops_the_credentials(owner_client, workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    response = owner_client.post(
        page("esp_settings", workspace_a), {"provider": "sandbox", "rate_per_second": "50"}
    )
    assert response.status_code == 302
    connection = connection_of(workspace_a)
    assert (connection.provider, connection.credentials) == ("sandbox", "")
    assert esp.connection_for(workspace_a)[1] == "sandbox"


def test_choosing_a_provider_swaps_in_its_fields(owner_client, workspace_a):
    response = owner_client.get(
        page("esp_settings", workspace_a) + "?provider=mailgun", headers=HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="api_key"' in body and 'name="sender_domain"' in body
    assert "https://api.eu.mailgun.net/v3" in body
    assert "<html" not in body  # the fragment, not the page


def test_pause_and_resume_from_the_page(owner_client, workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    response = owner_client.post(page("esp_pause", workspace_a), follow=True)
    assert esp.is_paused(workspace_a)
    assert 'data-testid="esp-paused"' in response.content.decode()
    owner_client.post(page("esp_resume", workspace_a))
    assert not esp.is_paused(workspace_a)


def test_viewer_reads_without_secrets_or_webhook_url(viewer_client, workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    response = viewer_client.get(page("esp_settings", workspace_a))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Sending through Postmark" in body
    assert "<fieldset disabled>" in body
    assert connection_of(workspace_a).webhook_secret not in body
    assert TOKEN not in body
    assert "esp_send_test" not in body and "Send a test" not in body


@pytest.mark.parametrize("role_client", ["viewer_client", "editor_client"])
@pytest.mark.parametrize("name", ["esp_settings", "esp_send_test", "esp_pause", "esp_resume"])
def test_viewers_and_editors_cannot_change_sending(request, workspace_a, role_client, name):
    client = request.getfixturevalue(role_client)
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    data = {"provider": "sandbox", "rate_per_second": "10"}
    assert client.post(page(name, workspace_a), data).status_code == 403
    connection = connection_of(workspace_a)
    assert (connection.provider, connection.paused_at, connection.status) == (
        "postmark",
        None,
        ConnectionStatus.UNTESTED,
    )


@pytest.mark.parametrize("name", ["esp_settings", "esp_send_test", "esp_pause", "esp_resume"])
def test_outsider_gets_404(outsider_client, workspace_a, name):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    assert outsider_client.get(page(name, workspace_a)).status_code == 404
    assert outsider_client.post(page(name, workspace_a)).status_code == 404
    assert connection_of(workspace_a).paused_at is None


def test_settings_tabs_link_to_sending(owner_client, workspace_a):
    body = owner_client.get(page("settings", workspace_a)).content.decode()
    assert f'href="{page("esp_settings", workspace_a)}"' in body


def test_operators_admin_never_shows_credentials(workspace_a):
    connect_postmark(workspace_a, "https://api.postmarkapp.com/")
    esp.mark_failing(workspace_a, "Postmark API response 401")
    connection = connection_of(workspace_a)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    for url in (
        reverse("admin:campaigns_espconnection_changelist"),
        reverse("admin:campaigns_espconnection_change", args=[connection.pk]),
    ):
        body = client.get(url).content.decode()
        assert "Postmark" in body
        assert TOKEN not in body
        assert connection.credentials not in body
        assert connection.webhook_secret not in body
    body = client.get(
        reverse("admin:campaigns_espconnection_change", args=[connection.pk])
    ).content.decode()
    assert "Postmark API response 401" in body


def test_reencrypt_command_rewrites_with_the_first_key(workspace_a, settings):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from campaigns.models import EspConnection
    from campaigns.sending import secrets

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAILPATH_ENCRYPTION_KEY = [old]
    EspConnection.objects.create(workspace=workspace_a, credentials=secrets.encrypt({"k": "v"}))
    settings.MAILPATH_ENCRYPTION_KEY = [new, old]
    out = StringIO()
    call_command("reencrypt_credentials", stdout=out)
    assert "Re-encrypted 1 connection(s)." in out.getvalue()
    settings.MAILPATH_ENCRYPTION_KEY = [new]
    row = EspConnection.objects.for_workspace(workspace_a).get()
    assert secrets.decrypt(row.credentials) == {"k": "v"}
