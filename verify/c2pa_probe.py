"""Read one file's C2PA manifest store and print the answer as one JSON object.

Run as a child process (``verify.credentials`` starts it through the ffmpeg runner), so the
manifest parser works under the same CPU, memory and time limits as ffmpeg and a crash in it
cannot take the worker down. It imports nothing from Django. Offline: remote manifests and
OCSP are never fetched.

Usage: python -I c2pa_probe.py FILE [TRUST_ANCHORS_PEM]
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    """Print {"outcome": "manifest" | "absent" | "error", ...} for the file in argv[1]."""
    import c2pa

    path = argv[1]
    trust_path = argv[2] if len(argv) > 2 else ""
    config: dict[str, object] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_path:
        with open(trust_path, encoding="utf-8") as handle:
            config["trust"] = {"trust_anchors": handle.read()}
    answer: dict[str, object] = {"reader_version": f"c2pa-rs {c2pa.sdk_version()}"}
    try:
        context = c2pa.Context(c2pa.Settings.from_dict(config))
        with open(path, "rb") as stream, c2pa.Reader(stream, context=context) as reader:
            answer.update(outcome="manifest", store=json.loads(reader.json()), embedded=reader.is_embedded())
    except c2pa.C2paError.ManifestNotFound:
        answer.update(outcome="absent")
    except c2pa.C2paError as exc:
        answer.update(outcome="error", error_kind=type(exc).__name__.lstrip("_").removeprefix("C2pa"), message=str(exc))
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
