"""The case report: what it says about each media item, rendered from stored rows."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import make_user
from tests.workflows_tests.test_admin import open_case
from tests.workflows_tests.test_admin_seen_before import media_rows
from verify.models import MediaMetadata
from workflows.exports.report import report_html

PARTIAL = {
    "code": "partial",
    "title": "Decoded 6.2 s of a declared 120 s; the file is truncated or damaged",
    "evidence": "ffmpeg: Invalid NAL unit size (3 times)",
}
DECODE_ERRORS = {"code": "decode_errors", "title": "ffmpeg reported 3 decode errors", "evidence": "frames near them"}


@pytest.fixture
def lead(db: None) -> Any:
    return make_user("lea", "lead", is_staff=True)


def media_section(html: str, item_id: int) -> str:
    found = re.search(rf"<h3>Media item {item_id}\b.*?(?=<h3>Media item |</section>)", html, re.S)
    assert found, html
    return found.group(0)


def test_report_shows_a_partly_decoded_file_above_its_facts(lead):
    # given: a truncated clip and an intact one in the same case
    case = open_case(lead, title="Truncated clip")
    truncated = media_rows(case, lead, sha="c", times=(0.0,))
    MediaMetadata.objects.create(media_item=truncated, raw={}, duration_s=120.0, signals=[PARTIAL, DECODE_ERRORS])
    intact = media_rows(case, lead, sha="d", times=(0.0,))
    MediaMetadata.objects.create(media_item=intact, raw={}, duration_s=2.0, signals=[DECODE_ERRORS])

    # when
    html = report_html(case=case, user=lead, show_graphic=False)

    # then: the partial signal is an alert before the SHA-256, not a row among the other signals
    section = media_section(html, truncated.pk)
    alert = section.index('class="alert partial-decode"')
    assert alert < section.index("SHA-256")
    assert "Decoded 6.2 s of a declared 120 s; the file is truncated or damaged." in section
    assert section.count("Decoded 6.2 s") == 1
    assert "ffmpeg reported 3 decode errors" in section
    assert "partial-decode" not in media_section(html, intact.pk)
