"""Content Credentials: signed in the tests, checked by the real c2pa reader in its child process."""

from __future__ import annotations

import pytest

from tests import c2pa_signing, photos
from tests.conftest import submit, wait_for_analysis
from tests.verify_tests.test_photos import desk_page
from verify import credentials


@pytest.fixture(scope="module")
def identity():
    return c2pa_signing.signing_identity()


@pytest.fixture
def signed(tmp_path, identity):
    plain = photos.camera_jpeg(tmp_path / "plain.jpg", name="coffee.png")
    return c2pa_signing.sign(plain, tmp_path / "signed.jpg", identity)


def test_credentials_of_a_signed_photo_are_valid_with_signer_actions_and_no_trust_list(signed):
    found = credentials.credentials_read(signed)

    assert found.state == "valid" and found.trusted is None  # "valid, signer not on a trust list"
    assert found.signer == "Newsroom Photo Desk" and found.signer_issuer == "Newsroom"
    assert found.claim_generator == "Newsroom Export 2.1"
    assert found.ai_generated is True
    assert found.actions[0]["action"] == "c2pa.created"
    assert found.validation_codes == []


def test_credentials_are_trusted_when_the_signer_chains_to_a_configured_anchor(signed, identity, tmp_path, settings):
    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(identity.root_pem)
    settings.VERIFY_C2PA_TRUST_ANCHORS = str(bundle)

    assert credentials.credentials_read(signed).trusted is True

    other = tmp_path / "other.pem"
    other.write_bytes(c2pa_signing.signing_identity().root_pem)
    settings.VERIFY_C2PA_TRUST_ANCHORS = str(other)
    found = credentials.credentials_read(signed)
    assert (found.state, found.trusted) == ("valid", False)


def test_credentials_of_pixels_changed_after_signing_are_invalid_with_the_data_hash_code(signed, tmp_path):
    found = credentials.credentials_read(c2pa_signing.with_changed_pixels(signed, tmp_path / "altered.jpg"))

    assert found.state == "invalid"
    assert "assertion.dataHash.mismatch" in [c["code"] for c in found.validation_codes]


def test_credentials_of_an_unsigned_photo_are_absent(tmp_path):
    assert credentials.credentials_read(photos.camera_jpeg(tmp_path / "plain.jpg")).state == "absent"


def test_credentials_of_a_truncated_manifest_are_never_absent(signed, tmp_path):
    found = credentials.credentials_read(c2pa_signing.with_truncated_manifest(signed, tmp_path / "cut.jpg"))

    assert found.state in ("unreadable", "invalid")
    assert found.message or found.validation_codes


def test_api_shows_valid_credentials_and_the_altered_copy_invalid_with_the_reason(api, worker, signed, tmp_path):
    altered = c2pa_signing.with_changed_pixels(signed, tmp_path / "altered.jpg")

    valid_detail = wait_for_analysis(api, submit(api, signed).json()["id"]).detail
    invalid_detail = wait_for_analysis(api, submit(api, altered).json()["id"]).detail
    valid, invalid = valid_detail["c2pa"], invalid_detail["c2pa"]

    assert valid["state"] == "valid" and valid["signer"] == "Newsroom Photo Desk" and valid["ai_generated"] is True
    assert invalid["state"] == "invalid"
    assert "assertion.dataHash.mismatch" in [c["code"] for c in invalid["validation_codes"]]
    desk = desk_page(valid_detail["case"])
    assert "Valid: the manifest is present and intact; signer not on a trust list" in desk
    assert "Newsroom Photo Desk" in desk and "trainedAlgorithmicMedia" in desk
    assert "assertion.dataHash.mismatch" in desk_page(invalid_detail["case"])
