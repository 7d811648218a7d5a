"""No answer of the API names a path on the server, however the file was analysed."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.conftest import submit, wait_for_analysis
from verify.models import MediaMetadata


@pytest.mark.worker
def test_media_detail_after_analysis_holds_no_server_path(api, worker, shots_clip: Path):
    # given
    item = submit(api, shots_clip).json()

    # when
    outcome = wait_for_analysis(api, item["id"])

    # then
    assert outcome.detail["state"] == "succeeded", outcome.detail
    text = json.dumps(outcome.detail)
    assert str(Path(settings.MEDIA_ROOT)) not in text
    assert str(Path(settings.MEDIA_ROOT).resolve()) not in text
    assert "originals/" not in text
    assert "filename" not in outcome.detail["metadata"]["ffprobe"]["format"]
    assert outcome.detail["metadata"]["ffprobe"]["format"]["format_name"]  # the rest is kept


@pytest.mark.django_db
def test_migration_strips_the_server_path_from_stored_metadata(api, shots_clip: Path):
    # given: metadata recorded before the fix
    item = submit(api, shots_clip).json()
    server_path = f"{settings.MEDIA_ROOT}/originals/{item['sha256'][:2]}/{item['sha256']}"
    raw = {"format": {"filename": server_path, "format_name": "mov,mp4"}, "streams": []}
    MediaMetadata.objects.create(media_item_id=item["id"], raw=raw)
    loader = MigrationExecutor(connection).loader
    forwards = loader.get_migration("verify", "0004_probe_without_server_path").operations[0].code

    # when
    forwards(loader.project_state(("verify", "0003_recycled_footage")).apps, None)

    # then
    detail = api.get(f"/api/v1/media/{item['id']}/").json()
    assert detail["metadata"]["ffprobe"] == {"format": {"format_name": "mov,mp4"}, "streams": []}
    assert str(settings.MEDIA_ROOT) not in json.dumps(detail)
