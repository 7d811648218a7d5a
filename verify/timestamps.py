"""Trusted timestamps (RFC 3161): ask the configured TSAs to sign a SHA-256, store and check their answers.

When an original is stored, one pending ``Timestamp`` per configured TSA (``VERIFY_TSA_URLS``)
is written in the same transaction, and a job asks the TSA after commit. A TSA that does not
answer, or answers badly, leaves the timestamp pending with the error and the time of the next
attempt (``VERIFY_TSA_RETRY_S``, doubling up to an hour); the worker's reconciler asks again
when that time comes. Nothing here ever holds up an analysis.

The request is built here (DER, SHA-256 imprint, a nonce, the TSA's certificate asked for) from
the digest alone, so a 2 GB original is not read again; ``rfc3161-client`` parses and verifies
the answers. Requests go only to URLs taken from the configuration.
"""

from __future__ import annotations

import logging
import secrets
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import rfc3161_client
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from verify.models import MediaItem, Timestamp

logger = logging.getLogger(__name__)

_SHA256_ALGORITHM_DER = bytes.fromhex("300d06096086480165030402010500")  # AlgorithmIdentifier sha256, NULL
_MAX_RESPONSE_BYTES = 1024 * 1024
_MAX_RETRY_S = 3600.0


class TimestampError(Exception):
    """A TSA did not answer, or its answer does not timestamp what was asked."""


@dataclass(frozen=True)
class TsaAnswer:
    """A TSA's granted answer: the TimeStampResp (DER), the certificates it sent, and its signing time."""

    tsa_url: str
    response: bytes
    certificates_pem: str
    gen_time: datetime


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _der_integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def timestamp_request_der(*, digest: bytes, nonce: int) -> bytes:
    """Return a TimeStampReq (DER) for a SHA-256 digest, with a nonce, asking for the TSA's certificate."""
    if len(digest) != 32:
        raise ValueError("a SHA-256 digest is 32 bytes")
    imprint = _der(0x30, _SHA256_ALGORITHM_DER + _der(0x04, digest))
    return _der(0x30, _der_integer(1) + imprint + _der_integer(nonce) + b"\x01\x01\xff")


def tsa_ask(*, url: str, digest: bytes, timeout_s: float | None = None) -> TsaAnswer:
    """Ask one TSA to timestamp a SHA-256 digest; return its checked answer or raise ``TimestampError``."""
    nonce = secrets.randbits(63)
    request = urllib.request.Request(  # noqa: S310 - the URL comes from VERIFY_TSA_URLS, checked to be http(s)
        url,
        data=timestamp_request_der(digest=digest, nonce=nonce),
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s or settings.VERIFY_TSA_TIMEOUT_S) as reply:  # noqa: S310
            body = reply.read(_MAX_RESPONSE_BYTES + 1)
    except OSError as exc:  # URLError, HTTPError, timeouts, refused connections
        raise TimestampError(f"the TSA did not answer: {exc}") from exc
    if len(body) > _MAX_RESPONSE_BYTES:
        raise TimestampError("the TSA's answer is too large")
    try:
        parsed = rfc3161_client.decode_timestamp_response(body)
    except Exception as exc:
        raise TimestampError(f"the TSA's answer is not a timestamp response: {exc}") from exc
    if parsed.status not in (rfc3161_client.PKIStatus.GRANTED, rfc3161_client.PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"the TSA refused (status {parsed.status}: {' '.join(parsed.status_string)})")
    if parsed.tst_info.message_imprint.message != digest:
        raise TimestampError("the TSA timestamped something else than what was asked")
    if parsed.tst_info.nonce != nonce:
        raise TimestampError("the TSA's answer carries another nonce")
    certificates = response_certificates_pem(body)
    if tsa_ca_pem():
        timestamp_verify(response=body, digest=digest, certificates_pem=certificates + tsa_ca_pem())
    return TsaAnswer(tsa_url=url, response=body, certificates_pem=certificates, gen_time=parsed.tst_info.gen_time)


def response_certificates_pem(response: bytes) -> str:
    """Return the certificates a TimeStampResp carries, as PEM, signer first where it can be told."""
    parsed = rfc3161_client.decode_timestamp_response(response)
    certificates = [x509.load_der_x509_certificate(der) for der in parsed.signed_data.certificates]
    certificates.sort(key=lambda cert: cert.subject == cert.issuer)  # self-signed roots last
    return "".join(cert.public_bytes(Encoding.PEM).decode() for cert in certificates)


def tsa_ca_pem() -> str:
    """Return the configured TSA root and intermediate certificates (PEM), or ""."""
    if not settings.VERIFY_TSA_CA_FILE:
        return ""
    return Path(settings.VERIFY_TSA_CA_FILE).read_text()


def timestamp_verify(*, response: bytes, digest: bytes, certificates_pem: str) -> datetime:
    """Check that a TimeStampResp signs this SHA-256 digest with a certificate of this chain; return its time.

    The self-signed certificates given are the roots trusted; the others are intermediates.
    """
    try:
        certificates = x509.load_pem_x509_certificates(certificates_pem.encode())
    except ValueError as exc:
        raise TimestampError(f"the TSA certificates cannot be read: {exc}") from exc
    roots = [cert for cert in certificates if cert.subject == cert.issuer]
    if not roots:
        raise TimestampError("the TSA certificate chain has no root")
    builder = rfc3161_client.VerifierBuilder(roots=roots, intermediates=[c for c in certificates if c not in roots])
    try:
        parsed = rfc3161_client.decode_timestamp_response(response)
        builder.build().verify(parsed, digest)
    except Exception as exc:
        raise TimestampError(f"the timestamp does not verify: {exc}") from exc
    return parsed.tst_info.gen_time


def timestamps_request_for(*, media_item: MediaItem) -> list[Timestamp]:
    """Write a pending timestamp of the item's original for each configured TSA (call inside its transaction)."""
    return [
        Timestamp.objects.get_or_create(
            media_item=media_item,
            tsa_url=url,
            defaults={"digest_sha256": media_item.sha256, "next_attempt_at": timezone.now()},
        )[0]
        for url in settings.VERIFY_TSA_URLS
    ]


def _retry_after_s(attempts: int) -> float:
    return float(min(settings.VERIFY_TSA_RETRY_S * 2 ** max(attempts - 1, 0), _MAX_RETRY_S))


def timestamp_obtain(*, timestamp_id: int) -> bool:
    """Ask the TSA for a pending timestamp; return whether it is granted now.

    Safe to run more than once and from several workers: the attempt is claimed by pushing the
    next attempt time forward, and only a pending row takes an answer.
    """
    row = Timestamp.objects.filter(pk=timestamp_id, state=Timestamp.State.PENDING).first()
    if row is None:
        return Timestamp.objects.filter(pk=timestamp_id, state=Timestamp.State.GRANTED).exists()
    attempts = row.attempts + 1
    Timestamp.objects.filter(pk=row.pk, state=Timestamp.State.PENDING).update(
        attempts=F("attempts") + 1, next_attempt_at=timezone.now() + timedelta(seconds=_retry_after_s(attempts))
    )
    try:
        answer = tsa_ask(url=row.tsa_url, digest=bytes.fromhex(row.digest_sha256))
    except TimestampError as exc:
        logger.warning("timestamp %s of media %s still pending: %s", row.pk, row.media_item_id, exc)
        Timestamp.objects.filter(pk=row.pk, state=Timestamp.State.PENDING).update(last_error=str(exc)[:500])
        return False
    granted = Timestamp.objects.filter(pk=row.pk, state=Timestamp.State.PENDING).update(
        state=Timestamp.State.GRANTED,
        response=answer.response,
        certificates_pem=answer.certificates_pem,
        gen_time=answer.gen_time,
        last_error="",
        next_attempt_at=None,
    )
    return bool(granted) or Timestamp.objects.filter(pk=row.pk, state=Timestamp.State.GRANTED).exists()


def timestamps_due(*, now: datetime | None = None) -> list[int]:
    """Return the ids of pending timestamps whose next attempt has come."""
    moment = now or timezone.now()
    due = Q(next_attempt_at__lte=moment) | Q(next_attempt_at__isnull=True)
    return list(Timestamp.objects.filter(due, state=Timestamp.State.PENDING).values_list("pk", flat=True)[:500])


def digest_timestamp(*, digest: bytes, tsa_urls: list[str]) -> tuple[list[TsaAnswer], list[str]]:
    """Ask these TSAs (taken from ``VERIFY_TSA_URLS`` by the caller) to timestamp a digest now.

    Return the answers and the failures.
    """
    answers, failures = [], []
    for url in tsa_urls:
        try:
            answers.append(tsa_ask(url=url, digest=digest))
        except TimestampError as exc:
            failures.append(f"{url}: {exc}")
    return answers, failures
