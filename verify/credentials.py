"""Content Credentials (C2PA): read a file's manifest offline and say what state it is in.

The state is one of ``valid`` (present and intact), ``invalid`` (present but broken, with the
validation codes that say what broke), ``absent`` (no manifest) and ``unreadable`` (it could
not be read or checked offline; never reported as absent). Trust is a separate question: a
correct signature from a signer that no configured trust anchor vouches for is ``valid`` with
``trusted`` false, or null when no trust list is configured at all.

The reader (``verify.c2pa_probe``) runs as a child process through the ffmpeg runner, with the
same CPU, memory and output limits and a timeout of its own.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from verify import c2pa_probe, ffmpeg
from verify.safeguards import resource_limits

# Codes that speak of trust, not of integrity: they never make a manifest "invalid".
TRUST_CODES = frozenset({"signingCredential.untrusted"})
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia")
_MAX_ANSWER_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class Credentials:
    """What the manifest store says, summarised; fields are empty where it says nothing."""

    state: str
    trusted: bool | None = None
    signer: str = ""
    signer_issuer: str = ""
    claim_generator: str = ""
    signed_at: datetime | None = None
    ai_generated: bool = False
    actions: list[dict[str, str]] = field(default_factory=list)
    ingredients: list[dict[str, Any]] = field(default_factory=list)
    validation_codes: list[dict[str, str]] = field(default_factory=list)
    message: str = ""
    manifest_store: dict[str, Any] = field(default_factory=dict)
    reader_version: str = ""


def credentials_read(path: Path) -> Credentials:
    """Return the Content Credentials state of a file, read in a limited child process."""
    argv = [sys.executable, "-I", str(Path(c2pa_probe.__file__)), str(Path(path).resolve())]
    if settings.VERIFY_C2PA_TRUST_ANCHORS:
        argv.append(str(settings.VERIFY_C2PA_TRUST_ANCHORS))
    try:
        result = ffmpeg.run(
            argv,
            timeout_s=settings.VERIFY_C2PA_TIMEOUT_S,
            limits=resource_limits(),
            max_stdout_bytes=_MAX_ANSWER_BYTES,
            max_stderr_bytes=_MAX_ANSWER_BYTES,
        )
    except ffmpeg.FFmpegError as exc:
        reason = "took too long" if exc.timed_out else "stopped with an error"
        return Credentials(state="unreadable", message=f"The Content Credentials reader {reason}.")
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError:
        return Credentials(state="unreadable", message="The Content Credentials reader gave no answer.")
    return credentials_summarise(answer, trust_list=bool(settings.VERIFY_C2PA_TRUST_ANCHORS))


def credentials_summarise(answer: dict[str, Any], *, trust_list: bool) -> Credentials:
    """Return the summary of one ``c2pa_probe`` answer (pure: tested on recorded answers)."""
    version = str(answer.get("reader_version", ""))
    outcome = answer.get("outcome")
    if outcome == "absent":
        return Credentials(state="absent", reader_version=version)
    if outcome != "manifest":
        kind = str(answer.get("error_kind", ""))
        message = str(answer.get("message", ""))[:400]
        if kind == "RemoteManifest":
            message = f"The manifest is stored remotely and is not fetched offline ({message})."
        return Credentials(state="unreadable", message=message or "unreadable", reader_version=version)
    store = answer.get("store") or {}
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    if not active:
        return Credentials(
            state="unreadable", message="The manifest store names no active manifest.", reader_version=version
        )
    codes = _failure_codes(store)
    state_name = str(store.get("validation_state", ""))
    integrity_broken = state_name == "Invalid" or any(c["code"] not in TRUST_CODES for c in codes)
    # Without a trust list nobody vouched either way: null, not false.
    trusted: bool | None = True if state_name == "Trusted" else (False if trust_list else None)
    signature = active.get("signature_info") or {}
    actions = _actions(active)
    return Credentials(
        state="invalid" if integrity_broken else "valid",
        trusted=None if integrity_broken else trusted,
        signer=str(signature.get("common_name") or ""),
        signer_issuer=str(signature.get("issuer") or ""),
        claim_generator=_claim_generator(active),
        signed_at=_datetime(signature.get("time")),
        ai_generated=any(a["digital_source_type"].endswith(AI_SOURCE_TYPES) for a in actions),
        actions=actions,
        ingredients=[_ingredient(ingredient, manifests) for ingredient in active.get("ingredients") or []],
        validation_codes=[c for c in codes if c["code"] not in TRUST_CODES],
        manifest_store=store,
        reader_version=version,
    )


def _failure_codes(store: dict[str, Any]) -> list[dict[str, str]]:
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    entries = results.get("failure") if results else None
    if entries is None:
        entries = store.get("validation_status") or []
    return [{"code": str(e.get("code", "")), "explanation": str(e.get("explanation", ""))} for e in entries]


def _claim_generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict):
        return " ".join(str(part) for part in (info[0].get("name"), info[0].get("version")) if part)
    return str(manifest.get("claim_generator") or "")


def _actions(manifest: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            agent = action.get("softwareAgent") or ""
            found.append(
                {
                    "action": str(action.get("action", "")),
                    "software_agent": str(agent.get("name", "") if isinstance(agent, dict) else agent),
                    "digital_source_type": str(action.get("digitalSourceType", "")),
                    "when": str(action.get("when", "")),
                }
            )
    return found


def _ingredient(ingredient: dict[str, Any], manifests: dict[str, Any]) -> dict[str, Any]:
    label = ingredient.get("active_manifest")
    failures = [
        str(entry.get("code", ""))
        for entry in ingredient.get("validation_status") or []
        if entry.get("code") not in TRUST_CODES and not str(entry.get("code", "")).endswith((".match", ".validated"))
    ]
    state = "absent" if not label else ("invalid" if failures else ("valid" if label in manifests else "unreadable"))
    return {
        "title": str(ingredient.get("title", "")),
        "format": str(ingredient.get("format", "")),
        "relationship": str(ingredient.get("relationship", "")),
        "state": state,
        "validation_codes": failures,
    }


def _datetime(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
