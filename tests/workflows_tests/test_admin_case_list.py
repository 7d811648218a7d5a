"""The desk's case list: case ids, times in the reader's zone with UTC on hover, and where footage was seen first."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import make_user
from tests.workflows_tests.test_admin import CHANGELIST, logged_in, open_case, page
from tests.workflows_tests.test_admin_seen_before import match_rows, media_rows
from workflows.models import Case, ReviewerPreference


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "analyst": make_user("ana", "analyst", is_staff=True),
        "analyst2": make_user("ana2", "analyst", is_staff=True),
        "reviewer": make_user("rev", "reviewer", is_staff=True),
    }


def row_of(html: str, title: str) -> str:
    for row in re.findall(r"<tr>.*?</tr>", html, re.S):
        if f">{title}</a>" in row:
            return row
    raise AssertionError(f"no row for {title}")


def test_case_list_shows_ids_and_times_in_the_readers_zone(people, settings):
    # given: a case opened at 10:15 UTC, and a reviewer who works in Kyiv (UTC+3 in summer)
    case = open_case(people["analyst"], title="Claimed strike")
    Case.objects.filter(pk=case.pk).update(created_at=datetime.datetime(2024, 7, 2, 10, 15, tzinfo=datetime.UTC))
    client = logged_in(people["reviewer"])

    # when
    in_utc = row_of(page(client.get(CHANGELIST)), "Claimed strike")
    saved = client.post("/admin/workflows/case/time-zone/", {"time_zone": "Europe/Kyiv"}, follow=True)
    in_kyiv = row_of(page(saved), "Claimed strike")

    # then
    assert f'<td class="field-id">{case.pk}</td>' in in_utc or f">{case.pk}</" in in_utc
    assert ">2024-07-02 10:15 UTC</time>" in in_utc
    assert ">2024-07-02 13:15 EEST</time>" in in_kyiv and 'title="2024-07-02 10:15 UTC"' in in_kyiv
    assert "Times are now shown in Europe/Kyiv." in page(saved)
    assert ReviewerPreference.objects.get(user=people["reviewer"]).time_zone == "Europe/Kyiv"
    # a name that is not a zone changes nothing
    client.post("/admin/workflows/case/time-zone/", {"time_zone": "Mars/Olympus"})
    assert ReviewerPreference.objects.get(user=people["reviewer"]).time_zone == "Europe/Kyiv"


def test_case_list_names_the_case_that_had_the_footage_first_if_the_user_may_see_it(people):
    # given: footage first in an analyst's own case, then in a second analyst's case, then in a third case
    first = open_case(people["analyst2"], title="First sighting")
    old = media_rows(first, people["analyst2"], sha="a", times=(0.0,), days_ago=30)
    second = open_case(people["analyst"], title="Second sighting")
    media_rows(second, people["analyst"], sha="a", times=(0.0,), days_ago=10)
    third = open_case(people["analyst"], title="Third sighting")
    new = media_rows(third, people["analyst"], sha="b", times=(0.0,))
    match_rows(new, old, [[0.0, 0.0]])
    Case.objects.filter(pk__in=[first.pk, second.pk, third.pk]).update(created_at=timezone.now())

    # when
    for_reviewer = page(logged_in(people["reviewer"]).get(CHANGELIST))
    for_analyst = page(logged_in(people["analyst"]).get(CHANGELIST))

    # then: the reviewer is told where it was first; the analyst, who may not see that case, nothing
    assert f"seen in case {first.pk}</a>" in row_of(for_reviewer, "Third sighting")
    assert f"seen in case {first.pk}</a>" in row_of(for_reviewer, "Second sighting")
    assert f"seen in case {second.pk}</a>" in row_of(for_reviewer, "First sighting")
    assert "Second sighting" in for_analyst and "First sighting" not in for_analyst
    assert "seen in case" not in for_analyst
