"""Reports and evidence packages from the desk's case page: asked for, listed, downloaded from the desk session."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from tests.conftest import make_user
from tests.workflows_tests.test_admin import change_url, desk_url, logged_in, open_case, page
from workflows.models import AuditEvent, Export


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "analyst": make_user("ana", "analyst", is_staff=True),
        "analyst2": make_user("ana2", "analyst", is_staff=True),
        "reviewer": make_user("rev", "reviewer", is_staff=True),
        "lead": make_user("lea", "lead", is_staff=True),
    }


def exports_section(html: str) -> str:
    found = re.search(r'<section class="module" id="exports">.*?</section>', html, re.S)
    assert found, "no Exports section"
    return re.sub(r"\s+", " ", found.group(0))


def test_a_reviewer_asks_for_a_report_with_graphic_frames_and_a_package(people):
    # given
    case = open_case(people["analyst"], title="Claimed strike")
    client = logged_in(people["reviewer"])
    before = exports_section(page(client.get(change_url(case))))
    assert "Export report" in before and "Export evidence package" in before and "Show graphic frames" in before

    # when
    report = client.post(desk_url(case, "export"), {"kind": "report_pdf", "show_graphic": "on"}, follow=True)
    client.post(desk_url(case, "export"), {"kind": "package"})

    # then: both are queued in the reviewer's name, and the page lists them with their state
    rows = list(Export.objects.filter(case=case).order_by("id").values_list("kind", "show_graphic", "requested_by"))
    assert rows == [("report_pdf", True, people["reviewer"].pk), ("package", False, people["reviewer"].pk)]
    shown = exports_section(page(report))
    assert "Case report (PDF) requested" in page(report)
    assert "Case report (PDF) · graphic frames shown" in shown and "queued, 0%" in shown
    listed = exports_section(page(client.get(change_url(case))))
    assert "Evidence package (ZIP)" in listed and "export-download" not in listed


def test_a_ready_report_downloads_from_the_desk_and_not_for_another_site(people):
    # given: a report the worker has made
    case = open_case(people["analyst"], title="Claimed strike")
    export = Export.objects.create(case=case, kind="report_html", requested_by=people["lead"], state="succeeded",
                                   progress_percent=100, size_bytes=17)  # fmt: skip
    Export.objects.filter(pk=export.pk).update(file=default_storage.save("exports/t/report.html", ContentFile(b"<p>")))
    client = logged_in(people["reviewer"])
    url = reverse("export-download", args=[export.pk])

    # when
    shown = exports_section(page(client.get(change_url(case))))
    cross_site = client.get(url, headers={"Sec-Fetch-Site": "cross-site"})
    from_desk = client.get(url, headers={"Sec-Fetch-Site": "same-origin"})

    # then
    assert f'href="{url}"' in shown and "ready" in shown
    assert cross_site.status_code == 403
    assert from_desk.status_code == 200 and b"".join(from_desk.streaming_content) == b"<p>"  # type: ignore[attr-defined]
    downloads = AuditEvent.objects.filter(case=case, action=AuditEvent.Action.EXPORT_DOWNLOADED)
    assert [event.actor for event in downloads] == [people["reviewer"]]


def test_an_analyst_cannot_export_a_case_they_may_not_see(people):
    case = open_case(people["analyst2"], title="Someone else's claim")

    response: Any = logged_in(people["analyst"]).post(desk_url(case, "export"), {"kind": "package"})

    assert response.status_code == 404
    assert not Export.objects.filter(case=case).exists()
