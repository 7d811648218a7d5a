"""Repeated wrong passwords lock an admin login out; an API client that asks too often is slowed down."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.throttling import UserRateThrottle

from tests.conftest import make_user, token_client

LOCKOUT_MESSAGE = "Too many failed logins: this account is locked for 15 minutes"


def _log_in(client: Client, username: str, password: str) -> Any:
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


@pytest.mark.django_db
def test_admin_login_locks_out_after_five_wrong_passwords():
    # given
    make_user("lead", "lead", is_staff=True)
    client = Client()
    first = _log_in(client, "lead", "wrong-1")
    assert first.status_code == 200
    assert "Please enter the correct username and password" in first.content.decode()

    # when
    for attempt in range(2, 7):
        _log_in(client, "lead", f"wrong-{attempt}")
    right = _log_in(client, "lead", "pw-lead-1234")

    # then
    assert right.status_code == 429
    assert LOCKOUT_MESSAGE in right.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_admin_lockout_is_per_username_and_address():
    # given: someone else's account was hammered from this address
    make_user("lead", "lead", is_staff=True)
    make_user("other", "lead", is_staff=True)
    for attempt in range(6):
        _log_in(Client(), "other", f"wrong-{attempt}")

    # when
    response = _log_in(Client(), "lead", "pw-lead-1234")
    from_elsewhere = _log_in(Client(REMOTE_ADDR="192.0.2.7"), "other", "pw-other-1234")

    # then
    assert (response.status_code, response.get("Location")) == (302, "/admin/"), response.content.decode()[-3000:]
    assert from_elsewhere.status_code == 302


@pytest.mark.django_db
def test_api_answers_429_with_retry_after_once_the_rate_is_spent(monkeypatch: pytest.MonkeyPatch):
    # given: a low rate for this test (the default is generous)
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "3/m")
    cache.clear()
    api = token_client(make_user("analyst", "analyst"))

    # when
    answers = [api.get("/api/v1/media/") for _ in range(4)]
    cache.clear()

    # then
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    throttled = answers[-1]
    assert 0 < int(throttled["Retry-After"]) <= 60
    error = throttled.json()["error"]
    assert error["code"] == "throttled"
    assert "throttled" in error["message"].lower()
    assert error["retry_after_s"] == int(throttled["Retry-After"])
