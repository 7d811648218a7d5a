"""yt-dlp, held to this service's rules: read first, check the caps, then download the original streams.

Every request goes through the fetch's egress proxy. yt-dlp never runs ffmpeg: its fixups,
post-processors and merger are off and its ffmpeg location points nowhere. Where a platform serves
video and audio separately, both are downloaded as they are and ``verify.fetching.streams`` joins
them by stream copy through ``verify.ffmpeg``. What yt-dlp says when it cannot read a post is
turned into a failure code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.networking import Request
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError, GeoRestrictedError, UnsupportedError
from yt_dlp.version import __version__ as YTDLP_VERSION

from verify.safeguards import AnalysisFailure

logger = logging.getLogger(__name__)

MAX_ALBUM_ENTRIES = 20
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# What yt-dlp's messages say, most specific first, and the failure they are.
_MESSAGE_CODES = (
    (re.compile(r"private|members[- ]only|login required|log in|sign in|authenticat", re.I), "source_private"),
    (re.compile(r"live event|is live|premieres in|live stream", re.I), "live_stream"),
    (
        re.compile(r"unavailable|removed|deleted|no longer|does not exist|not found|HTTP Error 40[14]", re.I),
        "source_unavailable",
    ),
)
_CODE_MESSAGES = {
    "source_private": "The post is private or needs a login: {detail}",
    "source_unavailable": "The post is not there (deleted, or the address is wrong): {detail}",
    "source_geo_blocked": "The source does not serve this post to the service's location: {detail}",
    "live_stream": "The link is a live stream, which cannot be fetched as a file: {detail}",
    "unsupported_url": "No video or picture could be found at this address: {detail}",
    "extractor_failed": "yt-dlp could not read the post (the platform may have changed): {detail}",
}


@dataclass(frozen=True)
class Downloaded:
    """One picture or clip of a post as downloaded, with the entry of the extractor's answer it belongs to.

    ``path`` is the file, or its video stream when the platform serves the audio separately
    (``audio_path``); ``format_ids`` are the formats downloaded, video first.
    """

    path: Path
    entry: dict[str, Any]
    audio_path: Path | None = None
    format_ids: tuple[str, ...] = ()


def _has(fmt: dict[str, Any], codec: str) -> bool:
    return fmt.get(codec) != "none"  # yt-dlp's own reading: unknown (None) counts as present


def formats_choose(formats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the formats to download, in yt-dlp's order (worst first): one file, or separate audio and video.

    The best video wins. A format carrying both video and audio is preferred when it is as tall
    and wide as the best video-only one; otherwise the best video-only format comes with the best
    audio-only one, to be joined by stream copy. The video is last, so yt-dlp's answer describes it.
    """
    videos = [f for f in formats if _has(f, "vcodec")]
    if not videos:
        return formats[-1:]
    best = videos[-1]
    progressive = [f for f in videos if _has(f, "acodec")]

    def size(fmt: dict[str, Any]) -> tuple[int, int]:
        return int(fmt.get("height") or 0), int(fmt.get("width") or 0)

    if progressive and size(progressive[-1]) >= size(best):
        return [progressive[-1]]
    audios = [f for f in formats if _has(f, "acodec") and not _has(f, "vcodec")]
    return [audios[-1], best] if audios else [best]


def _formats_select(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    return formats_choose(list(ctx["formats"]))


def ytdlp_version() -> str:
    """Return the version of yt-dlp this worker runs."""
    return str(YTDLP_VERSION)


def _options(*, proxy_url: str, workdir: Path, stall_timeout_s: float, max_bytes: int) -> dict[str, Any]:
    return {
        "proxy": proxy_url,
        "socket_timeout": stall_timeout_s,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        "cachedir": False,
        "geo_bypass": False,  # no invented X-Forwarded-For
        "format": _formats_select,  # never a merged format: yt-dlp would run ffmpeg to join it
        "fixup": "never",  # a fixup re-muxes the file: the original is kept as sent
        "postprocessors": [],
        "ffmpeg_location": str(workdir / "no-ffmpeg"),  # nothing there: yt-dlp finds no ffmpeg to run
        "hls_prefer_native": True,  # yt-dlp's own downloader, through the proxy; never a separate ffmpeg fetch
        "max_filesize": max_bytes,
        "playlistend": MAX_ALBUM_ENTRIES,
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "outtmpl": {"default": "%(autonumber)03d-%(id).40B.%(ext)s"},  # numbered per format downloaded
        "restrictfilenames": True,
        "updatetime": False,
        "retries": 1,
        "fragment_retries": 1,
        "extractor_retries": 0,
    }


def ytdlp_failure(exc: BaseException) -> AnalysisFailure:
    """Return the failure a yt-dlp error means, with yt-dlp's own message."""
    cause: BaseException | None = exc
    if isinstance(exc, DownloadError) and exc.exc_info and exc.exc_info[1] is not None:
        cause = exc.exc_info[1]
    detail = _ANSI.sub("", str(exc)).removeprefix("ERROR: ").strip()[:400]
    if isinstance(cause, GeoRestrictedError):
        code = "source_geo_blocked"
    elif isinstance(cause, UnsupportedError):
        code = "unsupported_url"
    else:
        code = _http_code(cause) or next((c for pattern, c in _MESSAGE_CODES if pattern.search(detail)), "")
        code = code or ("unsupported_url" if "no video" in detail.lower() else "extractor_failed")
    return AnalysisFailure(code, _CODE_MESSAGES[code].format(detail=detail))


def _http_code(cause: BaseException | None) -> str:
    seen = 0
    while cause is not None and seen < 10:
        if isinstance(cause, HTTPError):
            if cause.status in (404, 410):
                return "source_unavailable"
            if cause.status in (401, 403) and "X-Verify-Refused" not in (cause.response.headers or {}):
                return "source_private"
            return ""
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return ""


def info_extract(url: str, *, proxy_url: str, workdir: Path, stall_timeout_s: float, max_bytes: int) -> dict[str, Any]:
    """Return yt-dlp's answer for the URL without downloading anything; raise AnalysisFailure."""
    options = _options(proxy_url=proxy_url, workdir=workdir, stall_timeout_s=stall_timeout_s, max_bytes=max_bytes)
    with yt_dlp.YoutubeDL(options) as ydl:
        try:
            info = ydl.extract_info(url, download=False)
        except Exception as exc:  # yt-dlp raises DownloadError, and its extractors anything at all
            raise ytdlp_failure(exc) from exc
        if info is None:
            raise AnalysisFailure("unsupported_url", _CODE_MESSAGES["unsupported_url"].format(detail=url))
        return dict(ydl.sanitize_info(info))


def info_entries(info: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the videos or pictures of an answer: its entries for an album, else itself."""
    if info.get("_type") == "playlist":
        return [entry for entry in info.get("entries") or [] if entry][:MAX_ALBUM_ENTRIES]
    return [info]


def info_caps_check(info: dict[str, Any], *, max_bytes: int, max_duration_s: float) -> None:
    """Refuse, before anything is downloaded, a live stream or what the answer says is too long or too large."""
    for entry in info_entries(info):
        if entry.get("is_live") or entry.get("live_status") in ("is_live", "is_upcoming"):
            raise AnalysisFailure(
                "live_stream", "The link is a live stream (or one yet to start), which cannot be fetched as a file."
            )
        duration = entry.get("duration")
        if isinstance(duration, int | float) and duration > max_duration_s:
            raise AnalysisFailure(
                "too_long", f"The post's media lasts {duration:.0f} s; the most fetched is {max_duration_s:.0f} s."
            )
        formats = formats_choose(entry.get("formats") or []) or [entry]
        size = sum(int(f.get("filesize") or f.get("filesize_approx") or 0) for f in formats)
        if size > max_bytes:
            raise AnalysisFailure(
                "too_large", f"The post's media is about {size:,} bytes; the most fetched is {max_bytes:,}."
            )


def streams_download(
    info: dict[str, Any],
    *,
    proxy_url: str,
    workdir: Path,
    stall_timeout_s: float,
    max_bytes: int,
    progress: Callable[[dict[str, Any]], None],
) -> list[Downloaded]:
    """Download the original streams ``formats_choose`` picks for each entry; return them in album order."""
    options = _options(proxy_url=proxy_url, workdir=workdir, stall_timeout_s=stall_timeout_s, max_bytes=max_bytes)
    options["progress_hooks"] = [progress]
    downloads = []
    with yt_dlp.YoutubeDL(options) as ydl:
        for entry in info_entries(info):
            try:
                result = ydl.process_ie_result(dict(entry), download=True)
            except Exception as exc:
                raise ytdlp_failure(exc) from exc
            chosen = formats_choose(entry.get("formats") or []) or [entry]
            files = [Path(str(d.get("filepath") or "")) for d in result.get("requested_downloads") or []]
            if len(files) != len(chosen) or not all(path.is_file() for path in files):
                continue  # yt-dlp skipped a format (over max_filesize, say); the proxy's record says why
            ids = tuple(str(f.get("format_id")) for f in reversed(chosen))
            audio = files[0] if len(files) > 1 else None
            downloads.append(Downloaded(path=files[-1], entry=entry, audio_path=audio, format_ids=ids))
    return downloads


def page_fetch(url: str, *, proxy_url: str, stall_timeout_s: float, max_bytes: int) -> tuple[str, str, bytes]:
    """Return (final URL, content type, bytes) of a page fetched through the proxy, at most max_bytes of it."""
    options = {"proxy": proxy_url, "socket_timeout": stall_timeout_s, "quiet": True, "logger": logger}
    with yt_dlp.YoutubeDL(options) as ydl, ydl.urlopen(Request(url)) as response:
        content_type = str(response.headers.get("Content-Type", ""))
        content = response.read(max_bytes) if "html" in content_type.lower() else b""
        return str(response.url), content_type, content
