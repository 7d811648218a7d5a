"""Uploads as a client sees them: what is refused before anything is stored, and what is kept."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from tests.conftest import make_user, token_client
from verify.models import IdempotentRequest, MediaItem
from workflows.models import Case

MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


@pytest.fixture
def upload_tmp(settings, tmp_path: Path) -> Path:
    """Point Django's temporary upload files at an empty folder the test can inspect."""
    folder = tmp_path / "upload-tmp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def stored_files(settings) -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def nothing_was_kept(settings, before: set[Path], upload_tmp: Path) -> None:
    assert MediaItem.objects.count() == 0
    assert Case.objects.count() == 0
    assert stored_files(settings) == before
    assert list(upload_tmp.iterdir()) == []


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "verify-test-boundary") -> bytes:
    """Return a multipart/form-data body written byte by byte (name, filename or None, content)."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'.encode()
        if filename is not None:
            disposition += b'; filename="' + filename.encode("utf-8", "surrogatepass") + b'"'
        body += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        if filename is not None:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + content + b"\r\n"
    return body + b"--" + boundary.encode() + b"--\r\n"


def post_multipart(api, body: bytes, boundary: str = "verify-test-boundary", **headers):
    return api.generic(
        "POST", "/api/v1/media/", body, content_type=f"multipart/form-data; boundary={boundary}", **headers
    )


CLAIM = [("title", None, b"Claimed footage"), ("claim", None, b"Shows what the post says.")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"#EXTM3U\n#EXTINF:1.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", "an HLS playlist (#EXTM3U)"),
        (b"\xef\xbb\xbf#EXTM3U\n#EXT-X-VERSION:3\nsegment.ts\n", "an HLS playlist (#EXTM3U)"),
        (b"ffconcat version 1.0\nfile /etc/passwd\n", "an ffconcat script"),
        (b"file '/etc/passwd'\nfile 'clip.mp4'\n", "a concat file list"),
        (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "an HTML document"),
        (b"These are my notes about the footage.\n" * 200, "plain text"),
        (random.Random(7).randbytes(64 * 1024), "unrecognised binary data"),
        (b"%PDF-1.7\n" + random.Random(8).randbytes(8000), "a file of type application/pdf"),
    ],
    ids=["hls", "hls-bom", "ffconcat", "concat-list", "html", "text", "random", "pdf"],
)
def test_upload_content_that_is_not_media_is_refused_with_what_was_found(api, settings, upload_tmp, content, named):
    before = stored_files(settings)
    upload = io.BytesIO(content)
    upload.name = "clip.mp4"  # the extension says video; the bytes decide

    response = api.post("/api/v1/media/", {"file": upload, "title": "t", "claim": "c"}, format="multipart")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    file_error = error["fields"]["file"][0]
    assert file_error["code"] == "unsupported_content"
    assert named in file_error["message"]
    assert "MP4/MOV/3GP" in file_error["message"]  # and what would be accepted
    nothing_was_kept(settings, before, upload_tmp)


@pytest.mark.django_db
def test_upload_sniffing_accepts_an_mp4_whatever_its_name(api, upload_tmp):
    upload = io.BytesIO(MP4_HEAD)
    upload.name = "notes.txt"

    response = api.post("/api/v1/media/", {"file": upload, "title": "t", "claim": "c"}, format="multipart")

    assert response.status_code == 202, response.content
    assert response.json()["mime_type"] == "video/mp4"


@pytest.mark.django_db
def test_upload_zero_bytes_is_refused(api, settings, upload_tmp):
    before = stored_files(settings)

    response = post_multipart(api, multipart([("file", "empty.mp4", b""), *CLAIM]))

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"][0]["code"] == "empty"
    nothing_was_kept(settings, before, upload_tmp)


@pytest.mark.django_db
def test_upload_with_many_file_parts_is_refused_and_leaves_no_temporary_files(api, settings, upload_tmp):
    before = stored_files(settings)
    parts = [("file", f"part-{i}.mp4", MP4_HEAD + bytes([i])) for i in range(50)]

    response = post_multipart(api, multipart([*CLAIM, *parts]))

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "too_many_files"
    assert "one file per request" in error["message"]
    nothing_was_kept(settings, before, upload_tmp)


@pytest.mark.django_db
@pytest.mark.parametrize("size_bytes", [150_000, 2_000_000], ids=["stopped-while-streaming", "declared-too-large"])
def test_upload_over_the_limit_answers_413_and_removes_its_temporary_file(api, settings, upload_tmp, size_bytes):
    settings.VERIFY_MAX_UPLOAD_BYTES = 100_000
    before = stored_files(settings)

    response = post_multipart(api, multipart([*CLAIM, ("file", "big.mp4", MP4_HEAD + b"\x00" * size_bytes)]))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    nothing_was_kept(settings, before, upload_tmp)


@pytest.mark.django_db
def test_upload_refused_by_validation_leaves_no_temporary_file(api, settings, upload_tmp):
    before = stored_files(settings)

    response = post_multipart(api, multipart([("file", "clip.mp4", MP4_HEAD)]))  # no claim, no case

    assert response.status_code == 400
    nothing_was_kept(settings, before, upload_tmp)


HOSTILE_NAMES = {
    "traversal": "../../../../etc/passwd",
    "windows-traversal": "..\\..\\windows\\system32\\evil.mp4",
    "nul": "clip\x00.mp4",
    "crlf": "clip\r\nX-Injected: yes.mp4",
    "very-long": "A" * 5000 + ".mp4",
    "leading-dash": "-i concat:a|b -f hls.mp4",
    "rtl-override": "clip\u202egpj.exe",
    "html": "<img src=x onerror=alert(1)>.mp4",
}


@pytest.mark.django_db
@pytest.mark.parametrize("hostile", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_upload_hostile_file_name_is_stored_under_a_server_name_and_shown_escaped(api, settings, hostile):
    before = stored_files(settings)

    response = post_multipart(api, multipart([*CLAIM, ("file", hostile, MP4_HEAD + hostile.encode()[:64])]))

    assert response.status_code in (202, 400), response.content  # a mangled part header may be refused
    if response.status_code == 400:
        assert MediaItem.objects.count() == 0
        return
    body = response.json()
    shown = body["original_filename"]
    assert "/" not in shown
    assert all(char.isprintable() and char not in "\u202a\u202b\u202c\u202d\u202e" for char in shown)
    assert len(shown) <= 255
    item = MediaItem.objects.get(pk=body["id"])
    assert item.original.name == f"originals/{body['sha256'][:2]}/{body['sha256']}"
    new_files = stored_files(settings) - before
    assert {p.relative_to(settings.MEDIA_ROOT).as_posix() for p in new_files} <= {item.original.name}


# --- Idempotency-Key ------------------------------------------------------------------------


def post_with_key(api, content: bytes, key: str, title: str = "Convoy"):
    upload = io.BytesIO(content)
    upload.name = "clip.mp4"
    return api.post(
        "/api/v1/media/",
        {"file": upload, "title": title, "claim": "A convoy near the border"},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY=key,
    )


@pytest.mark.django_db
def test_idempotency_key_makes_a_retried_upload_return_the_first_answer(api):
    first = post_with_key(api, MP4_HEAD, "upload-2024-03-02-0001")

    retried = post_with_key(api, MP4_HEAD, "upload-2024-03-02-0001")

    assert first.status_code == retried.status_code == 202
    assert retried.json() == first.json()
    assert retried["Location"] == first["Location"]
    assert retried["Idempotent-Replayed"] == "true"
    assert MediaItem.objects.count() == 1 and Case.objects.count() == 1


@pytest.mark.django_db
def test_idempotency_key_reused_for_a_different_upload_is_refused(api):
    post_with_key(api, MP4_HEAD, "key-1")

    response = post_with_key(api, MP4_HEAD + b"other bytes", "key-1")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert MediaItem.objects.count() == 1


@pytest.mark.django_db
def test_idempotency_key_is_per_user_and_released_after_a_refusal(api):
    other = token_client(make_user("second-analyst", "analyst"))
    refused = post_with_key(api, b"not a video at all\n" * 10, "shared-key")

    mine = post_with_key(api, MP4_HEAD, "shared-key")
    theirs = post_with_key(other, MP4_HEAD, "shared-key")

    assert refused.status_code == 400  # a refusal does not hold the key
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]
    assert IdempotentRequest.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "naïve-key", "with space"])
def test_idempotency_key_must_be_visible_ascii(api, key):
    response = post_with_key(api, MP4_HEAD, key)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert MediaItem.objects.count() == 0
