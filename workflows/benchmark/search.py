"""Search benchmark: ``GET /api/v1/search/`` over an archive of 100,000 cases and 300,000 media items.

The archive is written with ``bulk_create`` (cases, media items and their search documents; on
PostgreSQL the vectors in one UPDATE), from a fixed seed, so every run searches the same
words. The requests go through Django's whole stack in-process (the test client, token
authentication, the serializer and the page count), as an analyst who sees about a tenth of
the cases and as a lead who sees all of them.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from verify.models import MediaItem
from workflows.benchmark.report import Check, Report, Timing
from workflows.models import Case, CaseSearchDocument
from workflows.search_index import search_vector

SEARCH_P95_LIMIT_S = 0.100
CASES, SMOKE_CASES = 100_000, 1_000
MEDIA_PER_CASE = 3
ANALYST_SHARE = 10  # the analyst opened one case in this many
_BATCH = 5_000
_SEED = 20241221
_PLACES = ("Kharkiv", "Kupiansk", "Izium", "Mariupol", "Odesa", "Kherson", "Aleppo", "Idlib", "Khan Younis",
           "Rafah", "Gaza City", "Sumy", "Bakhmut", "Avdiivka", "Homs", "Mosul", "Donetsk", "Zaporizhzhia")  # fmt: skip
_THINGS = ("convoy", "bridge", "strike", "checkpoint", "tank", "drone", "fire", "market", "school", "hospital",
           "column", "crossing", "shelling", "evacuation", "protest", "flood", "ambulance", "railway")  # fmt: skip
_SIGN_WORDS = ("вулиця", "Шевченка", "проспект", "Свободи", "шارع", "الحرية", "улица", "Ленина", "STOP", "EXIT")
_DEVICES = ("Apple iPhone 13", "Samsung SM-G991B", "Xiaomi M2101K6G", "DJI FC3411", "Google Pixel 7")
QUERIES = ("kharkiv", "convoy bridge", "Шевченка", "Khark", "evacuation Mosul", "drone strike market",
           "Samsung", "nothingmatchesthis")  # fmt: skip


def _user(username: str, role: str) -> tuple[Any, str]:
    user, _ = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user, Token.objects.get_or_create(user=user)[0].key


def archive_fill(*, cases: int, analyst: Any, other: Any) -> None:
    """Write cases, three media items each and their search documents, in batches."""
    rng = random.Random(_SEED)  # noqa: S311 - reproducible test data, not secrets
    for start in range(0, cases, _BATCH):
        batch = []
        for index in range(start, min(cases, start + _BATCH)):
            place, thing, other_thing = rng.choice(_PLACES), rng.choice(_THINGS), rng.choice(_THINGS)
            batch.append(
                Case(
                    title=f"{thing.capitalize()} in {place} #{index}", claim=f"Footage said to show a {thing} "
                    f"near the {other_thing} in {place}.", claimed_location=place,
                    source_url=f"https://t.me/channel{index % 997}/{index}",
                    created_by=analyst if index % ANALYST_SHARE == 0 else other,
                )
            )  # fmt: skip
        made = Case.objects.bulk_create(batch)
        media, documents = [], []
        for case in made:
            hashes = [hashlib.sha256(f"{case.pk}-{n}".encode()).hexdigest() for n in range(MEDIA_PER_CASE)]
            media += [
                MediaItem(case=case, original=f"originals/{digest}", original_filename=f"{digest[:8]}.mp4",
                          size_bytes=1_000_000, sha256=digest, uploaded_by=case.created_by,
                          state=MediaItem.State.SUCCEEDED)
                for digest in hashes
            ]  # fmt: skip
            sign = " ".join(rng.sample(_SIGN_WORDS, 2))
            head = f"{case.title}\n{case.claimed_location}"
            body = "\n".join([case.claim, case.source_url, sign, rng.choice(_DEVICES), *hashes])
            documents.append(CaseSearchDocument(case=case, head=head, body=body, head_folded=head.lower(),
                                                body_folded=body.lower()))  # fmt: skip
        MediaItem.objects.bulk_create(media)
        CaseSearchDocument.objects.bulk_create(documents)
    if connection.vendor == "postgresql":
        CaseSearchDocument.objects.update(vector=search_vector())
        with connection.cursor() as cursor:
            # What autovacuum does to an archive written over months: statistics, and the
            # visibility map that lets the analyst's case ids be read from indexes alone.
            cursor.execute("VACUUM ANALYZE")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def search_benchmark(*, smoke: bool, rounds: int) -> Report:
    """Fill the archive, then time every query as an analyst and as a lead; report p50 and p95."""
    cases = SMOKE_CASES if smoke else CASES
    analyst, analyst_token = _user("benchmark-search-analyst", "analyst")
    lead, lead_token = _user("benchmark-search-lead", "lead")
    other, _ = _user("benchmark-search-other", "analyst")
    started = time.perf_counter()
    archive_fill(cases=cases, analyst=analyst, other=other)
    fill_s = time.perf_counter() - started
    client = Client()
    report = Report()
    report.context.append(
        f"search: {cases:,} cases, {cases * MEDIA_PER_CASE:,} media items on {connection.vendor}; "
        f"queries {', '.join(repr(q) for q in QUERIES)}"
    )
    for label, token, visible in (("analyst", analyst_token, cases // ANALYST_SHARE), ("lead", lead_token, cases)):
        headers = {"Authorization": f"Token {token}"}
        client.get("/api/v1/search/", {"q": QUERIES[0]}, headers=headers)  # a warm connection and caches
        seconds: list[float] = []
        found: dict[str, str] = {}
        for _ in range(rounds):
            for q in QUERIES:
                started = time.perf_counter()
                response = client.get("/api/v1/search/", {"q": q}, headers=headers)
                seconds.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"search for {q!r} answered {response.status_code}: {response.content[:300]!r}")
                body = response.json()
                found[q] = f"{'≥ ' if body['capped'] else ''}{body['count']:,}"
        report.notes.append(f"cases found as {label}: " + ", ".join(f"{q!r} {count}" for q, count in found.items()))
        report.timings.append(Timing(f"`GET /api/v1/search/?q=…` as {label} ({visible:,} visible cases)", seconds))
        p95 = _percentile(seconds, 0.95)
        report.checks.append(
            Check("7", f"search p95 as {label} (p50 {statistics.median(seconds) * 1000:.0f} ms, "
                  f"{len(seconds)} requests)", f"{p95 * 1000:.0f} ms", f"< {SEARCH_P95_LIMIT_S * 1000:.0f} ms",
                  None if smoke else p95 < SEARCH_P95_LIMIT_S)
        )  # fmt: skip
    report.notes.append(f"writing the search archive took {fill_s:.0f} s")
    return report
