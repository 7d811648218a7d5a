"""Evidence integrity: originals are write-once, re-hashed on schedule, and derived files say where they came from."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from tests.conftest import start_worker, stop_worker, submit
from verify import ffmpeg
from verify.analysis import analysis_run
from verify.integrity import originals_verify
from verify.models import Keyframe, MediaItem
from verify.signals import original_integrity_failed


@pytest.fixture
def integrity_signals() -> Any:
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append({k: v for k, v in kwargs.items() if k != "signal"})

    original_integrity_failed.connect(receiver, weak=False)
    yield received
    original_integrity_failed.disconnect(receiver)


def tamper(item: MediaItem, data: bytes) -> None:
    path = Path(item.original.path)
    os.chmod(path, 0o640)
    path.write_bytes(data)
    os.chmod(path, 0o440)


@pytest.fixture
def two_items(api, footage_dir: Path, tmp_path: Path) -> tuple[MediaItem, MediaItem]:
    first = tmp_path / "first.mp4"
    first.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(2048))
    second = tmp_path / "second.mp4"
    second.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(2048))
    ids = [submit(api, path).json()["id"] for path in (first, second)]
    return MediaItem.objects.get(pk=ids[0]), MediaItem.objects.get(pk=ids[1])


@pytest.mark.django_db
def test_verify_originals_flags_a_tampered_original_and_announces_it_once(two_items, integrity_signals):
    # given
    intact, tampered = two_items
    tamper(tampered, b"\x00\x00\x00\x18ftypmp42 edited afterwards")
    out = io.StringIO()
    # when
    with pytest.raises(CommandError) as failure:
        call_command("verify_originals", stdout=out)
    # then
    assert f"media {tampered.pk}" in str(failure.value)
    assert "Checked 2 stored originals (2 media items)." in out.getvalue()
    tampered.refresh_from_db()
    intact.refresh_from_db()
    assert tampered.integrity_mismatch is True and tampered.integrity_checked_at is not None
    assert intact.integrity_mismatch is False and intact.integrity_checked_at is not None
    assert len(integrity_signals) == 1
    sent = integrity_signals[0]
    assert sent["media_item_id"] == tampered.pk
    assert (sent["case_id"], sent["expected"]) == (tampered.case_id, tampered.sha256)
    assert sent["actual"] not in ("", tampered.sha256) and len(sent["actual"]) == 64

    # and: a second check reports it again but announces it only once
    with pytest.raises(CommandError):
        call_command("verify_originals", stdout=io.StringIO())
    assert len(integrity_signals) == 1


@pytest.mark.django_db
def test_verify_originals_reports_a_missing_original(two_items, integrity_signals):
    _, missing = two_items
    Path(missing.original.path).unlink()

    with pytest.raises(CommandError):
        call_command("verify_originals", stdout=io.StringIO())

    assert integrity_signals[0]["actual"] == ""
    assert MediaItem.objects.get(pk=missing.pk).integrity_mismatch is True


@pytest.mark.django_db
def test_verify_originals_passes_when_everything_matches(two_items):
    out = io.StringIO()

    call_command("verify_originals", stdout=out)

    assert "All originals match their SHA-256." in out.getvalue()


@pytest.mark.django_db
def test_periodic_check_skips_originals_checked_recently(two_items):
    from django.utils import timezone

    first = originals_verify(checked_before=timezone.now())
    again = originals_verify(checked_before=timezone.now() - timezone.timedelta(hours=1))

    assert (first.files_checked, first.items_checked) == (2, 2)
    assert (again.files_checked, again.items_checked) == (0, 0)


@pytest.mark.worker
def test_worker_rehashes_originals_on_its_own_schedule(api, worker, tmp_path):
    # given: an original nobody has checked, and a worker whose timers run every half second
    path = tmp_path / "scheduled.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(1024))
    item_id = submit(api, path).json()["id"]
    MediaItem.objects.filter(pk=item_id).update(state=MediaItem.State.FAILED)  # keep the analysis out of it
    tamper(MediaItem.objects.get(pk=item_id), b"replaced")
    scheduled = start_worker({"VERIFY_RECONCILE_INTERVAL_S": "0.5", "VERIFY_INTEGRITY_CHECK_INTERVAL_S": "3600"})
    try:
        # when
        deadline = time.monotonic() + 30
        while MediaItem.objects.get(pk=item_id).integrity_checked_at is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop_worker(scheduled, graceful=False)  # nothing of its own to hand back
    # then
    assert MediaItem.objects.get(pk=item_id).integrity_mismatch is True


@pytest.mark.django_db
def test_originals_are_write_once_through_the_api(api, two_items):
    item, _ = two_items
    before = Path(item.original.path).read_bytes()

    answers = [
        api.put(f"/api/v1/media/{item.pk}/", {"title": "x"}),
        api.patch(f"/api/v1/media/{item.pk}/", {"sha256": "0" * 64}),
        api.delete(f"/api/v1/media/{item.pk}/"),
        api.post(f"/api/v1/media/{item.pk}/original/", {}),
        api.put(f"/api/v1/media/{item.pk}/original/", {}),
        api.delete(f"/api/v1/media/{item.pk}/original/"),
    ]

    assert [a.status_code for a in answers] == [405] * len(answers)
    assert Path(item.original.path).read_bytes() == before
    assert stat.S_IMODE(Path(item.original.path).stat().st_mode) == 0o440
    assert MediaItem.objects.filter(pk=item.pk).exists()


@pytest.mark.django_db
def test_originals_are_write_once_in_the_admin(two_items, django_user_model):
    item, _ = two_items
    admin = django_user_model.objects.create_superuser("boss")
    client = APIClient()
    client.force_login(admin)

    change = client.post(f"/admin/verify/mediaitem/{item.pk}/change/", {"original_filename": "renamed"})
    delete = client.post(f"/admin/verify/mediaitem/{item.pk}/delete/", {"post": "yes"})
    bulk = client.post(
        "/admin/verify/mediaitem/", {"action": "delete_selected", "_selected_action": [item.pk], "post": "yes"}
    )

    assert change.status_code == 403
    assert delete.status_code == 403
    assert bulk.status_code in (200, 302)  # the action is not offered: nothing is deleted
    item.refresh_from_db()
    assert item.original_filename == "first.mp4"
    assert Path(item.original.path).exists()


@pytest.mark.django_db
def test_each_keyframe_records_its_source_hash_and_the_ffmpeg_that_made_it(api, shots_clip):
    item_id = submit(api, shots_clip).json()["id"]

    analysis_run(media_item_id=item_id)

    item = MediaItem.objects.get(pk=item_id)
    banner = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    version = ffmpeg.parse_version(banner)
    assert item.state == MediaItem.State.SUCCEEDED
    assert item.ffmpeg_version == version  # recorded with the contact sheet, on the item it belongs to
    keyframes = Keyframe.objects.filter(media_item=item)
    assert keyframes.exists()
    assert {(k.source_sha256, k.ffmpeg_version) for k in keyframes} == {(item.sha256, version)}
