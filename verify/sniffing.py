"""Recognise what an upload is from its first bytes, before anything is stored or queued.

Only the containers that ffmpeg's demuxer allow-list (``verify.ffmpeg.ACCEPTED_DEMUXERS``) can
open are accepted, by their magic numbers. Everything else is named as precisely as the head
allows (an HLS playlist, an ffconcat script, an HTML page, plain text, unrecognised binary data)
so that the person submitting it learns what the service saw. The file extension and the
client's Content-Type are never consulted: both are chosen by the sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import filetype

# How many leading bytes a decision needs. MPEG-TS needs three 188-byte packets.
SNIFF_BYTES = 4096

ACCEPTED_KINDS_TEXT = "MP4/MOV/3GP, Matroska/WebM, AVI, MPEG-TS, FLV, WAV, MP3, Ogg, AAC, PNG, JPEG, WebP and GIF"

_ISO_BMFF_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid")
_TS_PACKET = 188
_M2TS_PACKET = 192


@dataclass(frozen=True)
class Sniffed:
    """What the head of a file looks like, and whether the service accepts it."""

    accepted: bool
    kind: str


def content_sniff(head: bytes) -> Sniffed:
    """Return what the leading bytes of a file say it is."""
    kind = _container_kind(head)
    if kind:
        return Sniffed(accepted=True, kind=kind)
    return Sniffed(accepted=False, kind=_rejected_kind(head))


def _container_kind(head: bytes) -> str:
    if len(head) >= 8 and head[4:8] in _ISO_BMFF_BOXES:
        return "MP4/QuickTime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"AVI ": "AVI", b"WAVE": "WAV", b"WEBP": "WebP"}.get(head[8:12], "")
    if head.startswith(b"FLV\x01"):
        return "FLV"
    if head.startswith(b"OggS"):
        return "Ogg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"ID3"):
        return "MP3"
    if head.startswith(b"ADIF"):
        return "AAC"
    if _is_transport_stream(head):
        return "MPEG-TS"
    return _mpeg_audio_kind(head)


def _is_transport_stream(head: bytes) -> bool:
    for offset, packet in ((0, _TS_PACKET), (4, _M2TS_PACKET)):
        positions = [offset + i * packet for i in range(3)]
        if positions[-1] < len(head) and all(head[p] == 0x47 for p in positions):
            return True
    return False


def _mpeg_audio_kind(head: bytes) -> str:
    # A frame sync (11 set bits) followed by header fields that are not reserved values.
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return ""
    layer = (head[1] >> 1) & 0b11
    if layer == 0 and head[1] & 0xF6 == 0xF0 and (head[2] >> 2) & 0xF < 13:
        return "AAC"  # ADTS
    version = (head[1] >> 3) & 0b11
    bitrate_index, rate_index = head[2] >> 4, (head[2] >> 2) & 0b11
    if version != 1 and layer != 0 and bitrate_index not in (0, 15) and rate_index != 3:
        return "MP3"
    return ""


_TEXT_KINDS = (
    (re.compile(rb"^#EXTM3U"), "an HLS playlist (#EXTM3U)"),
    (re.compile(rb"^ffconcat\s+version", re.IGNORECASE), "an ffconcat script"),
    (re.compile(rb"^\[playlist\]", re.IGNORECASE), "a PLS playlist"),
    (re.compile(rb"^file\s+['\"]?[^\n]+", re.IGNORECASE), "a concat file list"),
    (re.compile(rb"^<!doctype\s+html|^<html|^<head|^<body|^<script", re.IGNORECASE), "an HTML document"),
    (re.compile(rb"^<\?xml|^<svg|^<smil", re.IGNORECASE), "an XML document"),
    (re.compile(rb"^[{\[]"), "a JSON document"),
)


def _rejected_kind(head: bytes) -> str:
    if _looks_like_text(head):
        text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        for pattern, kind in _TEXT_KINDS:
            if pattern.search(text):
                return kind
        if re.search(rb"<(html|script|iframe|body)\b", text[:SNIFF_BYTES], re.IGNORECASE):
            return "an HTML document"
        return "plain text"
    guessed = filetype.guess(head)
    if guessed is not None:
        return f"a file of type {guessed.mime}, which is not audio or video"
    return "unrecognised binary data"


def _looks_like_text(head: bytes) -> bool:
    sample = head[:SNIFF_BYTES]
    if not sample or b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a character cut at the end of the sample is fine
            return False
    control = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return control / len(sample) < 0.01


def rejection_message(kind: str) -> str:
    """Return the message an uploader sees when their file is not a container the service accepts."""
    return (
        f"The file is {kind}, not an audio, video or image file this service analyses. Accepted: {ACCEPTED_KINDS_TEXT}."
    )
