"""Static files are compressed once per version: `manage.py up` does not redo it at every start."""

from __future__ import annotations

import gzip
from pathlib import Path

from verify.staticfiles import IncrementalCompressedStaticFilesStorage

SCRIPT = "function show(panel) { panel.hidden = false; }\n" * 200


def _collect(storage: IncrementalCompressedStaticFilesStorage, *names: str) -> list[str]:
    """Post-process names as collectstatic does; return the compressed files written."""
    return sorted(compressed for _, compressed, done in storage.post_process({n: (storage, n) for n in names}) if done)


def test_static_files_are_compressed_again_only_when_they_changed(tmp_path: Path):
    # given: two collected scripts, compressed once
    storage = IncrementalCompressedStaticFilesStorage(location=tmp_path)
    (tmp_path / "desk.js").write_text(SCRIPT)
    (tmp_path / "admin.js").write_text(SCRIPT.replace("show", "hide"))
    first = _collect(storage, "desk.js", "admin.js")

    # when: collected again unchanged, then with one of them changed
    again = _collect(storage, "desk.js", "admin.js")
    (tmp_path / "desk.js").write_text(SCRIPT.replace("panel", "drawer"))
    after_change = _collect(storage, "desk.js", "admin.js")

    # then
    assert "desk.js.gz" in first and "admin.js.gz" in first
    assert again == []
    assert after_change and all(name.startswith("desk.js.") for name in after_change)
    assert gzip.decompress((tmp_path / "desk.js.gz").read_bytes()).decode() == SCRIPT.replace("panel", "drawer")


def test_static_files_are_all_compressed_when_the_record_is_unreadable(tmp_path: Path):
    # given
    storage = IncrementalCompressedStaticFilesStorage(location=tmp_path)
    (tmp_path / "desk.js").write_text(SCRIPT)
    _collect(storage, "desk.js")
    (tmp_path / ".compressed.json").write_text("{not json")

    # when
    again = _collect(storage, "desk.js")

    # then
    assert "desk.js.gz" in again
