"""A local RFC 3161 time-stamping authority for the tests: a CA and a TSA certificate, openssl ts -reply on loopback.

The CA and the TSA's key and certificate are made with ``cryptography`` (the TSA's with the
critical timeStamping extended key usage); each request is answered by ``openssl ts -reply``.
Its answers carry the TSA's certificate only (openssl writes a longer chain unsorted, which
strict DER parsers refuse); the root is ``ca_pem``. The TSA can be started on a port chosen
before it runs, so a test can point the service at it while it is still down.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.ports import free_port

_CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "verify tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class LocalTsa:
    """A TSA on 127.0.0.1:port; ``ca_pem`` is its root, ``tsa_pem`` its signing certificate."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="verify-tsa-"))
        now = datetime.now(UTC) - timedelta(minutes=5)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("verify test TSA root"))
            .issuer_name(_name("verify test TSA root"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        tsa_key = ec.generate_private_key(ec.SECP256R1())
        tsa_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("verify test TSA"))
            .issuer_name(ca_cert.subject)
            .public_key(tsa_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_pem = self.dir / "ca.pem"
        self.tsa_pem = self.dir / "tsa.pem"
        self.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.tsa_pem.write_bytes(tsa_cert.public_bytes(serialization.Encoding.PEM))
        (self.dir / "tsa.key").write_bytes(
            tsa_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (self.dir / "serial").write_text("01\n")
        (self.dir / "tsa.cnf").write_text(_CONFIG.format(dir=self.dir))
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsa"

    def reply(self, query: bytes) -> bytes:
        """Answer one TimeStampReq with ``openssl ts -reply``."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.dir) as work:
            query_path, reply_path = Path(work) / "query.tsq", Path(work) / "reply.tsr"
            query_path.write_bytes(query)
            subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.dir / "tsa.cnf"), "-queryfile", str(query_path),
                 "-out", str(reply_path)],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            self.requests += 1
            return reply_path.read_bytes()

    def start(self) -> LocalTsa:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = tsa.reply(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
