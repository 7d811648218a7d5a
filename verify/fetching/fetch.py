"""The fetching stage of an item submitted as a link: read the post, check the caps, download, keep the post.

Runs in the worker, inside the item's analysis job (claimed by ``verify.job_states``, leased by
``verify.leases``), before the probe. Every connection goes through one ``EgressProxy``; a refusal
or a limit it records is the failure reported, whatever yt-dlp made of the failed request.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from verify.fetching import attach, posts, streams, ytdlp
from verify.fetching.egress import EgressPolicy
from verify.fetching.models import SourcePost
from verify.fetching.proxy import EgressProxy, EgressSession
from verify.models import MediaItem
from verify.safeguards import AnalysisFailure

logger = logging.getLogger(__name__)

T = TypeVar("T")
_PROGRESS_WRITE_INTERVAL_S = 1.0


def _session() -> EgressSession:
    return EgressSession(
        policy=EgressPolicy.from_setting(settings.VERIFY_FETCH_ALLOWED_ADDRESSES),
        max_bytes=settings.VERIFY_FETCH_MAX_BYTES,
        timeout_s=settings.VERIFY_FETCH_TIMEOUT_S,
        stall_timeout_s=settings.VERIFY_FETCH_STALL_TIMEOUT_S,
        max_redirects=settings.VERIFY_FETCH_MAX_REDIRECTS,
    )


def _guarded(session: EgressSession, step: Callable[[], T]) -> T:
    """Run a step; when it fails, report what the proxy refused or stopped, if anything, before yt-dlp's reason."""
    try:
        return step()
    except Exception:
        if session.refusals:
            raise AnalysisFailure("fetch_refused_address", session.refusals[0].message) from None
        if session.limit is not None:
            raise AnalysisFailure(session.limit.code, session.limit.message) from None
        raise


def earlier_fetch(*, url: str, exclude_pk: int) -> SourcePost | None:
    """Return the latest fetch of this URL (as submitted or as its canonical address) that kept media."""
    found = SourcePost.objects.filter(
        Q(submitted_url=url) | Q(canonical_url=url), state=SourcePost.State.FETCHED, media_items__sha256__isnull=False
    ).exclude(pk=exclude_pk)
    return found.order_by("-fetched_at", "-pk").first()


def _progress_writer(item: MediaItem) -> Callable[[dict[str, Any]], None]:
    done: dict[str, int] = {}
    totals: dict[str, int] = {}
    last = [0.0]

    def hook(status: dict[str, Any]) -> None:
        name = str(status.get("filename") or "")
        done[name] = int(status.get("downloaded_bytes") or 0)
        totals[name] = int(status.get("total_bytes") or status.get("total_bytes_estimate") or 0)
        if status.get("status") == "finished" or time.monotonic() - last[0] >= _PROGRESS_WRITE_INTERVAL_S:
            last[0] = time.monotonic()
            total = sum(totals.values())  # the files of an album, or a post's separate video and audio, so far
            MediaItem.objects.filter(pk=item.pk, state=MediaItem.State.RUNNING).update(
                fetched_bytes=sum(done.values()), fetch_total_bytes=total or None
            )

    return hook


def media_item_fetch(item: MediaItem) -> None:
    """Fetch the post behind a url-born item and give the item its original; raise AnalysisFailure.

    Converges when it runs again: an item that already has its original is left alone, and a
    post fetched before (by the same URL or its canonical address) is re-used unless the
    submission asked for a re-fetch.
    """
    if item.sha256 is not None or item.source_post is None:
        return
    post = item.source_post
    earlier = None if post.refetch else earlier_fetch(url=post.submitted_url, exclude_pk=post.pk)
    if earlier is not None:
        attach.originals_reuse(item=item, pending=post, earlier=earlier)
        return
    try:
        _fetch(item, post)
    except AnalysisFailure as failure:
        SourcePost.objects.filter(pk=post.pk).update(state=SourcePost.State.FAILED, fetched_at=timezone.now())
        if post.refetch and failure.code == "source_unavailable":
            _removed_record(post, failure)
        raise


def _telegram_checked(url: str, extract: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Refuse a private Telegram link before any request, and say what reading one needs when Telegram refuses."""
    if posts.telegram_private_link(url):
        raise AnalysisFailure(
            "source_private", f"The link is to a private Telegram channel or group. {posts.TELEGRAM_CREDENTIALS_NOTE}"
        )
    try:
        return extract()
    except AnalysisFailure as failure:
        if failure.code == "source_private" and posts.telegram_embed_url(url):
            raise AnalysisFailure(failure.code, f"{failure.message} {posts.TELEGRAM_CREDENTIALS_NOTE}") from failure
        raise


def _fetch(item: MediaItem, post: SourcePost) -> None:
    session = _session()
    limits: dict[str, Any] = {"stall_timeout_s": session.stall_timeout_s, "max_bytes": session.max_bytes}
    with tempfile.TemporaryDirectory(prefix="verify-fetch-", dir=settings.FILE_UPLOAD_TEMP_DIR) as work:
        workdir = Path(work)
        with EgressProxy(session) as proxy:
            info = _telegram_checked(
                post.submitted_url,
                lambda: _guarded(
                    session,
                    lambda: ytdlp.info_extract(post.submitted_url, proxy_url=proxy.url, workdir=workdir, **limits),
                ),
            )
            fields = posts.info_fields(
                info, submitted_url=post.submitted_url, max_info_bytes=settings.VERIFY_FETCH_MAX_INFO_BYTES
            )
            earlier = None if post.refetch else earlier_fetch(url=fields["canonical_url"], exclude_pk=post.pk)
            if earlier is not None:
                attach.originals_reuse(item=item, pending=post, earlier=earlier)
                return
            ytdlp.info_caps_check(
                info, max_bytes=session.max_bytes, max_duration_s=settings.VERIFY_FETCH_MAX_DURATION_S
            )
            page = None if fields["platform"] == "direct" else _page_fetch(post.submitted_url, proxy.url, session)
            downloads = _guarded(
                session,
                lambda: ytdlp.streams_download(
                    info, proxy_url=proxy.url, workdir=workdir, progress=_progress_writer(item), **limits
                ),
            )
        if not downloads:
            raise session_failure(session) or AnalysisFailure(
                "unsupported_url", "yt-dlp read the post but downloaded no file from it."
            )
        if page is not None:
            fields = {**fields, **posts.page_fields(page), **_page_stored(page)}
        files = [streams.downloaded_file(d, workdir=workdir) for d in downloads]
        fields["streams_merged"] = "; ".join(filter(None, map(streams.streams_merged, downloads)))[:300]
        _post_fetched(post, fields)
        attach.originals_attach(item=item, post=post, paths=files)


def session_failure(session: EgressSession) -> AnalysisFailure | None:
    """Return the failure the proxy recorded for this fetch, if any."""
    if session.refusals:
        return AnalysisFailure("fetch_refused_address", session.refusals[0].message)
    if session.limit is not None:
        return AnalysisFailure(session.limit.code, session.limit.message)
    return None


def _page_fetch(url: str, proxy_url: str, session: EgressSession) -> posts.FetchedPage | None:
    """Return the post page as fetched, or None: the page is kept when it can be, never required."""
    page_url = posts.telegram_embed_url(url) or url
    try:
        final_url, content_type, content = ytdlp.page_fetch(
            page_url,
            proxy_url=proxy_url,
            stall_timeout_s=session.stall_timeout_s,
            max_bytes=settings.VERIFY_FETCH_MAX_PAGE_BYTES,
        )
    except Exception as exc:  # the media may still be fetched; the post record says the page is missing
        logger.warning("could not fetch the post page %s: %s", page_url, exc)
        return None
    if not content:
        return None
    return posts.FetchedPage(url=final_url, content=content, content_type=content_type)


def _page_stored(page: posts.FetchedPage) -> dict[str, Any]:
    sha256 = hashlib.sha256(page.content).hexdigest()
    name = f"posts/{sha256[:2]}/{sha256}.html"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(page.content))
    return {"page": name, "page_url": page.url[:2000], "page_sha256": sha256, "page_size_bytes": len(page.content)}


def _post_fetched(post: SourcePost, fields: dict[str, Any]) -> None:
    model_fields = {f.name for f in SourcePost._meta.concrete_fields}
    values = {k: v for k, v in fields.items() if k in model_fields}
    for name in ("title", "author_name", "author_id", "forwarded_from", "post_id", "platform", "extractor"):
        max_length = getattr(SourcePost._meta.get_field(name), "max_length", None)
        if isinstance(values.get(name), str) and max_length:
            values[name] = values[name][:max_length]
    SourcePost.objects.filter(pk=post.pk).update(
        **values, state=SourcePost.State.FETCHED, fetched_at=timezone.now(), ytdlp_version=ytdlp.ytdlp_version()
    )


def _removed_record(post: SourcePost, failure: AnalysisFailure) -> None:
    """Mark the earlier fetches of a post that a re-fetch found gone."""
    now = timezone.now()
    earlier = SourcePost.objects.filter(
        Q(submitted_url=post.submitted_url) | Q(canonical_url=post.submitted_url), state=SourcePost.State.FETCHED
    ).exclude(pk=post.pk)
    earlier.filter(removed_at__isnull=True).update(removed_at=now, removed_message=failure.message[:500])
