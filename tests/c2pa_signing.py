"""Sign test photos with Content Credentials, with a root and a signer certificate the tests make."""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AI_GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes
    key_pem: bytes
    root_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Newsroom"),
        ]
    )


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=not signer, crl_sign=not signer, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def signing_identity() -> SigningIdentity:
    """Return a root CA and an ES256 signer certificate with the profile c2pa accepts for signing."""
    now = datetime.datetime.now(datetime.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder().subject_name(_name("Newsroom Test Root")).issuer_name(_name("Newsroom Test Root"))
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(_name("Newsroom Photo Desk")).issuer_name(root.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signer=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    return SigningIdentity(
        chain_pem=leaf.public_bytes(pem) + root.public_bytes(pem),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        root_pem=root.public_bytes(pem),
    )


def sign(source: Path, target: Path, identity: SigningIdentity, *, source_type: str = AI_GENERATED) -> Path:
    """Write target: source with a C2PA manifest saying it was created, of the given source type."""
    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, identity.chain_pem, identity.key_pem, None)
    )
    manifest = {
        "claim_generator_info": [{"name": "Newsroom Export", "version": "2.1"}],
        "title": source.name,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]},
            }
        ],
    }
    with c2pa.Builder(manifest) as builder, source.open("rb") as src, target.open("w+b") as dst:
        builder.sign(signer, "image/jpeg", src, dst)
    return target


def with_changed_pixels(signed: Path, target: Path) -> Path:
    """Write target: the signed JPEG with bytes of its compressed picture flipped after signing."""
    data = bytearray(signed.read_bytes())
    for offset in (200, 300, 400):
        data[-offset] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def with_truncated_manifest(signed: Path, target: Path) -> Path:
    """Write target: the signed JPEG with each APP11 (JUMBF) segment cut to half its length."""
    raw = signed.read_bytes()
    out, pos = bytearray(raw[:2]), 2
    while pos < len(raw):
        marker = raw[pos : pos + 2]
        length = struct.unpack(">H", raw[pos + 2 : pos + 4])[0]
        segment = raw[pos : pos + 2 + length]
        if marker == b"\xff\xeb":
            half = segment[4 : 4 + (length - 2) // 2]
            segment = marker + struct.pack(">H", len(half) + 2) + half
        out += segment
        pos += 2 + length
        if marker == b"\xff\xda":
            out += raw[pos:]
            break
    target.write_bytes(bytes(out))
    return target
