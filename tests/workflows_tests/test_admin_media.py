"""The desk's media item page: the evidence in words, warnings only when true, keyframes blurred."""

from __future__ import annotations

import re

from django.urls import reverse

from tests.workflows_tests.test_admin import (  # noqa: F401 (fixtures)
    analysed_case,
    change_url,
    logged_in,
    open_case,
    page,
    people,
    tagged_clip,
)
from verify.models import Keyframe, MediaItem, MediaMetadata

PARTIAL = {
    "code": "partial",
    "title": "Decoded 6.2 s of a declared 120 s; the file is truncated or damaged",
    "evidence": "ffmpeg: Invalid NAL unit size (3 times)",
}


def media_url(item: MediaItem) -> str:
    return reverse("admin:verify_mediaitem_change", args=[item.pk])


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_media_page_of_a_clip_speaks_in_words(people, analysed_case):  # noqa: F811
    item = analysed_case.media_items.get()

    html = page(logged_in(people["reviewer"]).get(media_url(item)))

    text = text_of(html)
    for label in ("Original file name", "SHA-256", "Size", "Submitted by", "Analysis", "Integrity", "Duration"):
        assert f" {label} " in text, label
    assert item.sha256 in html and item.original_filename in text
    # no field names, no boolean icons: a false flag reads "no" or is not there
    for raw in ("integrity_mismatch", "keyframes_truncated", "values_truncated", "icon-no.svg", "icon-yes.svg"):
        assert raw not in html, raw
    assert "Keyframe cap reached no" in text and "desk-warning" not in html and "partial-decode" not in html
    # keyframes blurred, each with its time and its reasons in words; cuts marked
    assert html.count('class="kf-blur"') == item.keyframes.count() + 1  # + the contact sheet
    assert "first frame after a cut" in text and "key frame" in text and "0:02.000" in text
    assert "scene" not in re.findall(r'<span class="kf-reasons">([^<]*)', html)[1:]
    assert html.count("kf-tile kf-cut") == sum("scene" in k.reasons for k in item.keyframes.all()) >= 3
    assert reverse("mediaitem-contact-sheet", args=[item.pk]) in html
    assert f'href="{change_url(analysed_case)}"' in html
    # and the case page links here
    assert media_url(item) in page(logged_in(people["reviewer"]).get(change_url(analysed_case)))


def test_media_page_of_a_photo_has_no_frame_rate_and_shows_warnings_only_when_true(people):  # noqa: F811
    # given: a still whose container field claims 25 fps, with a partial signal and a failed re-hash
    case = open_case(people["analyst"], title="Photo of the bridge")
    item = MediaItem.objects.create(
        case=case, original="originals/p.jpg", size_bytes=10, sha256="e" * 64, uploaded_by=people["analyst"],
        state="succeeded", original_filename="bridge.jpg", integrity_mismatch=True, keyframes_truncated=False,
    )  # fmt: skip
    MediaMetadata.objects.create(
        media_item=item, raw={}, frame_rate_fps=25.0, frame_count=1, values_truncated=True, signals=[PARTIAL]
    )
    Keyframe.objects.create(
        media_item=item, timestamp_s=0.0, reasons=["photo"], image="k/p.jpg", width=64, height=48, phash="0" * 16
    )

    # when
    html = page(logged_in(people["reviewer"]).get(media_url(item)))

    # then
    text = text_of(html)
    assert "fps" not in text and "Keyframe cap" not in text and "Frames" not in text
    assert '<span class="kf-reasons">photo</span>' in html and "0:00.000" not in text
    assert "Decoded 6.2 s of a declared 120 s; the file is truncated or damaged." in text
    assert html.index("partial-decode") < html.index('id="evidence"')
    assert re.search(r'class="desk-warning">The stored original no longer matches its SHA-256', html)
    assert "Some metadata values were longer than the service stores and were cut." in text


def test_media_page_of_a_case_the_analyst_may_not_see_is_not_shown(people):  # noqa: F811
    case = open_case(people["analyst2"], title="Someone else's claim")
    item = MediaItem.objects.create(
        case=case, original="originals/x.bin", size_bytes=10, sha256="d" * 64, uploaded_by=people["analyst2"]
    )

    response = logged_in(people["analyst"]).get(media_url(item))

    assert response.status_code == 302 and "d" * 64 not in response.content.decode()
