"""What a post says about itself: fields from the extractor's answer and from the post page as fetched.

Each value is taken from a field that says what it is, and ``posted_at`` records which one; a
value neither gives stays empty. Telegram's public embed page (``t.me/<channel>/<id>?embed=1``)
is read here too, for what yt-dlp does not keep: views, forwarded-from, the author's link.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from yt_dlp.utils import clean_html, get_element_by_class, get_element_html_by_class

from verify.safeguards import strings_truncate

_PLATFORMS = {"telegramembed": "telegram", "youtube": "youtube", "twitter": "x", "tiktok": "tiktok"}
_TELEGRAM_POST = re.compile(r"^https?://t\.me/(?:s/)?(?P<channel>[\w]{3,64})/(?P<id>\d+)")
_META = re.compile(r"<meta\s+[^>]*>", re.I)
_ATTR = re.compile(r"""(\w[\w:-]*)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")


@dataclass(frozen=True)
class FetchedPage:
    """The post page exactly as the server sent it, and the address it came from."""

    url: str
    content: bytes
    content_type: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def is_html(self) -> bool:
        return "html" in self.content_type.lower()


_TELEGRAM_PRIVATE = re.compile(r"^https?://(?:www\.)?(?:t|telegram)\.me/(?:c/\d+|\+|joinchat/)", re.I)
TELEGRAM_CREDENTIALS_NOTE = (
    "Private Telegram channels and groups can only be read with a Telegram account's API credentials "
    "(VERIFY_TELEGRAM_API_ID and VERIFY_TELEGRAM_API_HASH, from my.telegram.org), and reading with them is "
    "not built into this service yet: submit the media as a file."
)


def telegram_private_link(url: str) -> bool:
    """Return whether the URL points into a private Telegram channel or group (t.me/c/…, an invite link)."""
    return bool(_TELEGRAM_PRIVATE.match(url))


def telegram_embed_url(url: str) -> str | None:
    """Return the public embed page of a t.me post link, or None for any other link."""
    found = _TELEGRAM_POST.match(url)
    if not found:
        return None
    return f"https://t.me/{found['channel']}/{found['id']}?embed=1&mode=tme"


def page_meta(text: str) -> dict[str, str]:
    """Return the page's <meta property|name=… content=…> values, first one of each name."""
    found: dict[str, str] = {}
    for tag in _META.findall(text):
        attrs = {k.lower(): html.unescape(v.strip("\"'")) for k, v in _ATTR.findall(tag)}
        name = attrs.get("property") or attrs.get("name") or attrs.get("itemprop")
        if name and "content" in attrs:
            found.setdefault(name.lower(), attrs["content"])
    return found


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else None  # a time without a zone is not a moment
    return None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():  # "1.2K" is a rounding, not a count
        return int(value.strip())
    return None


def telegram_fields(text: str, base_url: str) -> dict[str, Any]:
    """Return the post fields a Telegram embed page (class tgme_widget_message) shows."""
    if "tgme_widget_message" not in text:
        return {}
    fields: dict[str, Any] = {"platform": "telegram"}
    post = re.search(r'data-post="([\w]+)/(\d+)"', text)
    if post:
        fields.update(author_id=post[1], post_id=post[2], canonical_url=f"https://t.me/{post[1]}/{post[2]}")
    author = clean_html(get_element_by_class("tgme_widget_message_owner_name", text) or "")
    author = author or clean_html(get_element_by_class("tgme_widget_message_author", text) or "")
    if author:
        fields["author_name"] = author
    owner = re.search(r'class="tgme_widget_message_owner_name"[^>]*href="([^"]+)"', text)
    if owner:
        fields["author_url"] = urljoin(base_url, html.unescape(owner[1]))
    body = clean_html(get_element_by_class("tgme_widget_message_text", text) or "")
    if body:
        fields["text"] = body
    date = get_element_html_by_class("tgme_widget_message_date", text) or ""
    when = re.search(r'<time[^>]*datetime="([^"]+)"', date or text)
    if when and _parse_time(when[1]):
        fields.update(posted_at=_parse_time(when[1]), posted_at_source="Telegram embed page: <time datetime>")
    views = _count(clean_html(get_element_by_class("tgme_widget_message_views", text) or ""))
    if views is not None:
        fields["view_count"] = views
    forwarded = get_element_html_by_class("tgme_widget_message_forwarded_from_name", text)
    if forwarded:
        fields["forwarded_from"] = clean_html(forwarded) or ""
        link = re.search(r'href="([^"]+)"', forwarded)
        if link:
            fields["forwarded_from_url"] = urljoin(base_url, html.unescape(link[1]))
    return fields


def page_fields(page: FetchedPage) -> dict[str, Any]:
    """Return the post fields the page itself states: Telegram's embed markup, else Open Graph tags."""
    text = page.text
    fields = telegram_fields(text, page.url)
    meta = page_meta(text)
    published = _parse_time(meta.get("article:published_time"))
    if published and "posted_at" not in fields:
        fields.update(posted_at=published, posted_at_source="page meta article:published_time")
    if meta.get("og:url"):
        fields.setdefault("canonical_url", urljoin(page.url, meta["og:url"]))
    if meta.get("og:title"):
        fields.setdefault("title", meta["og:title"])
    if meta.get("og:description"):
        fields.setdefault("text", meta["og:description"])
    if meta.get("og:image"):
        fields.setdefault("thumbnail_url", urljoin(page.url, meta["og:image"]))
    return fields


def info_fields(info: dict[str, Any], *, submitted_url: str, max_info_bytes: int) -> dict[str, Any]:
    """Return the post fields of yt-dlp's answer, with the answer itself cut to fit."""
    extractor = str(info.get("extractor_key") or info.get("extractor") or "")
    entries = info.get("entries") or []
    first = next((e for e in entries if e), {}) if info.get("_type") == "playlist" else info
    direct = bool(first.get("direct"))
    platform = _PLATFORMS.get(extractor.lower(), "direct" if direct else "web")
    generic = platform in ("web", "direct")

    def pick(*names: str) -> Any:
        return next((v for n in names for v in (info.get(n), first.get(n)) if v not in (None, "")), None)

    fields: dict[str, Any] = {
        "platform": platform,
        "extractor": extractor,
        "canonical_url": str(pick("webpage_url") or submitted_url)[:2000],
        "post_id": "" if platform in ("web", "direct") else str(pick("id") or ""),
        "title": str(pick("title") or "") if platform != "direct" else "",
        # yt-dlp's generic extractor names the web site's domain as "uploader": that is no author.
        "author_name": "" if generic else str(pick("channel", "uploader", "creator") or ""),
        "author_id": "" if generic else str(pick("channel_id", "uploader_id") or ""),
        "author_url": "" if generic else str(pick("channel_url", "uploader_url") or ""),
        "text": str(pick("description") or ""),
        "view_count": _count(pick("view_count")),
        "forward_count": _count(pick("repost_count")),
        "like_count": _count(pick("like_count")),
        "thumbnail_url": str(pick("thumbnail") or "")[:2000],
        "album_urls": [str(e.get("webpage_url") or e.get("url") or "") for e in entries if e] if entries else [],
    }
    for name in ("timestamp", "release_timestamp"):
        moment = _parse_time(pick(name))
        if moment is not None:
            fields.update(posted_at=moment, posted_at_source=f"yt-dlp {name} ({extractor})")
            break
    fields["info"], fields["info_truncated"] = info_capped(info, max_bytes=max_info_bytes)
    return {k: v for k, v in fields.items() if v not in (None, "")}


def info_capped(info: dict[str, Any], *, max_bytes: int) -> tuple[dict[str, Any], bool]:
    """Return the answer as stored: whole when it fits, else without its bulkiest parts and long strings cut."""
    if len(json.dumps(info, default=str)) <= max_bytes:
        return json.loads(json.dumps(info, default=str)), False
    slim = {k: v for k, v in info.items() if k not in ("formats", "thumbnails", "automatic_captions", "subtitles")}
    slim, _ = strings_truncate(json.loads(json.dumps(slim, default=str)), max_chars=2000)
    if len(json.dumps(slim)) > max_bytes:
        slim = {k: v for k, v in slim.items() if not isinstance(v, dict | list)}
    return slim, True


def host_of(url: str) -> str:
    """Return the host of a URL, lower-cased."""
    return (urlsplit(url).hostname or "").lower()
