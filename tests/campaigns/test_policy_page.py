"""The sending policy page: admins set caps, quiet hours and the sunset rule; bad
combinations are form errors that save nothing."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from campaigns.models import SendingPolicy
from campaigns.services import sending_policy_for

pytestmark = pytest.mark.django_db


def url(workspace):
    return reverse("sending_policy", args=[workspace.slug])


def data(**overrides):
    base = {"daily_cap": "2", "weekly_cap": "5", "quiet_start": "21:00", "quiet_end": "08:00",
            "sunset_days": "180", "track_opens": "on", "track_clicks": "on",
            "utm_source": "mailpath", "utm_medium": "email"}  # fmt: skip
    return {**base, **overrides}


def test_defaults_are_one_a_day_and_three_a_week(workspace_a):
    policy = sending_policy_for(workspace_a)
    assert (policy.daily_cap, policy.weekly_cap) == (1, 3)
    assert sending_policy_for(workspace_a).pk == policy.pk


def test_admin_saves_caps_and_quiet_hours(owner_client, workspace_a):
    response = owner_client.post(url(workspace_a), data())
    assert response.status_code == 302
    policy = SendingPolicy.objects.for_workspace(workspace_a).get()
    assert (policy.daily_cap, policy.weekly_cap, policy.sunset_days) == (2, 5, 180)
    assert policy.quiet_start == datetime.time(21, 0) and policy.quiet_end == datetime.time(8, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quiet_end": ""}, "both a start and an end"),
        ({"quiet_end": "21:00"}, "cannot start and end at the same time"),
        ({"daily_cap": "4", "weekly_cap": "3"}, "cannot be lower than the daily cap"),
    ],
)
def test_bad_combinations_are_refused(owner_client, workspace_a, overrides, message):
    response = owner_client.post(url(workspace_a), data(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert sending_policy_for(workspace_a).daily_cap == 1


def test_viewers_read_editors_cannot_write_outsiders_404(
    viewer_client, editor_client, outsider_client, workspace_a
):
    assert viewer_client.get(url(workspace_a)).status_code == 200
    assert editor_client.post(url(workspace_a), data()).status_code == 403
    assert outsider_client.get(url(workspace_a)).status_code == 404
