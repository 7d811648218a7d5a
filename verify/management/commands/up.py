"""Set up the database and run the web server and an analysis worker on this machine."""

import http.client
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token

from verify.checks import NEW_KEY_HINT, secret_key_weakness

# The worker hands its running analyses back after VERIFY_WORKER_STOP_GRACE_S; give it that and a
# few heartbeats more before it is killed.
_STOP_GRACE_S = 30
# A process that exits on its own is restarted after a backoff; one that keeps exiting stops
# the service with a message instead of restarting forever.
MAX_CRASHES = 5
CRASH_WINDOW_S = 60.0
_RESTART_DELAYS_S = (1.0, 2.0, 4.0, 8.0)
_READY_POLL_S = 0.2
# Each web process serves this many connections at once. gevent gives every connection its own
# greenlet, so a client that sends its request slowly (or never) costs a few kilobytes instead of
# a whole worker; gunicorn drops a connection whose request headers take longer than KEEPALIVE_S.
WEB_CONNECTIONS_PER_WORKER = 1000
WEB_KEEPALIVE_S = 5
# Uploads of several gigabytes stream for minutes; the timeout only ends a worker whose event
# loop stopped answering gunicorn's heartbeat.
WEB_TIMEOUT_S = 600


def web_argv(*, bind: str, workers: int, access_log: bool = False) -> list[str]:
    """Return the gunicorn command line that serves the web tier."""
    argv = [
        sys.executable, "-m", "gunicorn", "verify.wsgi:application", "--bind", bind,
        "--workers", str(workers), "--worker-class", "gevent",
        "--worker-connections", str(WEB_CONNECTIONS_PER_WORKER),
        "--keep-alive", str(WEB_KEEPALIVE_S), "--timeout", str(WEB_TIMEOUT_S),
    ]  # fmt: skip
    if access_log:
        argv += ["--access-logfile", "-"]
    return argv


def worker_argv(*, concurrency: int) -> list[str]:
    """Return the Celery worker command line: the bare command, which consumes every declared queue."""
    return [sys.executable, "-m", "celery", "-A", "verify", "worker", "--concurrency", str(concurrency), "-l", "info"]


def restart_delay_s(crashes: int) -> float:
    """Return how long to wait before restarting a process that exited for the ``crashes``-th time in the window."""
    return _RESTART_DELAYS_S[min(crashes, len(_RESTART_DELAYS_S)) - 1]


def _start(name: str, argv: list[str], worker_ready: threading.Event) -> subprocess.Popen[bytes]:
    if name != "worker":
        return subprocess.Popen(argv)  # noqa: S603 - our own web server command line
    worker = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603 - our worker
    assert worker.stdout is not None  # noqa: S101 (stdout=PIPE above)
    threading.Thread(target=_forward_worker_output, args=(worker.stdout, worker_ready), daemon=True).start()
    return worker


def bind_host(bind: str) -> str:
    """Return the host part of a gunicorn --bind value (``HOST``, ``HOST:PORT``, ``[V6]:PORT``, ``unix:PATH``)."""
    if bind.startswith(("unix:", "fd://")):
        return ""
    if bind.startswith("["):
        return bind[1 : bind.index("]")]
    return bind.rsplit(":", 1)[0] if bind.count(":") == 1 else bind


def is_loopback_bind(bind: str) -> bool:
    """Return True if nothing but this machine can reach a server bound to ``bind``."""
    host = bind_host(bind)
    if not host:
        return True  # a unix socket or an inherited descriptor: no network address of its own
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to may be reachable from outside


class Command(BaseCommand):
    help = (
        "Migrate, make sure an admin account exists, then run gunicorn and a Celery worker until Ctrl-C or "
        "SIGTERM; either one that exits on its own is restarted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind",
            default=os.environ.get("VERIFY_BIND", "127.0.0.1:8000"),
            help="Address of the web server, HOST:PORT (default 127.0.0.1:8000, or $VERIFY_BIND). An address "
            "beyond loopback needs DJANGO_SECRET_KEY set to a strong key.",
        )
        parser.add_argument(
            "--web-workers",
            type=int,
            default=2,
            help="gunicorn worker processes (default 2); each serves up to "
            f"{WEB_CONNECTIONS_PER_WORKER} connections at once.",
        )
        parser.add_argument(
            "--concurrency", type=int, default=2, help="Analyses the Celery worker runs in parallel (default 2)."
        )
        parser.add_argument("--access-log", action="store_true", help="Print gunicorn's access log (off by default).")

    def handle(
        self, *args: Any, bind: str, web_workers: int, concurrency: int, access_log: bool, **options: Any
    ) -> None:
        if web_workers < 1 or concurrency < 1:
            raise CommandError("--web-workers and --concurrency must be at least 1.")
        self._refuse_weak_key_beyond_loopback(bind)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        password, token = self._admin_credentials()
        worker_ready = threading.Event()
        argv = {
            "worker": worker_argv(concurrency=concurrency),
            "web": web_argv(bind=bind, workers=web_workers, access_log=access_log),
        }
        processes = {name: _start(name, argv[name], worker_ready) for name in argv}
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        announced = False
        exit_code = 0
        crashes: dict[str, list[float]] = {name: [] for name in argv}
        restart_at: dict[str, float] = {}
        while not stopping:
            for name, process in processes.items():
                if name in restart_at or process.poll() is None:
                    continue
                now = time.monotonic()
                crashes[name] = [t for t in crashes[name] if now - t < CRASH_WINDOW_S] + [now]
                if len(crashes[name]) >= MAX_CRASHES:
                    exit_code = process.returncode or 1
                    self.stderr.write(
                        f"The {name} process stopped {len(crashes[name])} times within {CRASH_WINDOW_S:g} s "
                        f"(last exit code {process.returncode}); stopping the service. Its output above says why."
                    )
                    stopping = True
                    break
                delay_s = restart_delay_s(len(crashes[name]))
                self.stderr.write(
                    f"The {name} process stopped unexpectedly (exit code {process.returncode}); "
                    f"restarting it in {delay_s:g} s."
                )
                restart_at[name] = now + delay_s
            for name, when in list(restart_at.items()):
                if not stopping and time.monotonic() >= when:
                    del restart_at[name]
                    processes[name] = _start(name, argv[name], worker_ready)
                    self.stderr.write(f"The {name} process was restarted.")
            if not announced and worker_ready.is_set() and _web_answers(bind):
                self._announce(bind, password, token)
                announced = True
            time.sleep(_READY_POLL_S if not announced else 0.5)
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + _STOP_GRACE_S
        for process in processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
        raise SystemExit(exit_code)

    def _refuse_weak_key_beyond_loopback(self, bind: str) -> None:
        if is_loopback_bind(bind):
            return
        if settings.VERIFY_SECRET_KEY_GENERATED:
            problem = "DJANGO_SECRET_KEY is not set"
        else:
            problem = secret_key_weakness(settings.SECRET_KEY) or ""
        if problem:
            raise CommandError(f"Refusing to listen on {bind}, beyond loopback: {problem}. {NEW_KEY_HINT}")

    def _admin_credentials(self) -> tuple[str | None, str | None]:
        """Return the new admin's password and the admin's new token; None for what existed already."""
        user_model = get_user_model()
        admin = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        password = None
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = user_model.objects.create_superuser("admin", email="", password=password)
        token, created = Token.objects.get_or_create(user=admin)
        return password, token.key if created else None

    def _announce(self, bind: str, password: str | None, token: str | None) -> None:
        base = f"http://{bind}"
        login = (
            f"user admin, password {password} (shown once; change it with: python3 manage.py changepassword admin)"
            if password
            else "log in with your admin account (reset: python3 manage.py changepassword admin)"
        )
        token_line = (
            f"{token} (shown once)"
            if token
            else "shown when it was created; print it with: python3 manage.py create_api_user admin, "
            "replace it with: python3 manage.py create_api_user admin --rotate"
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Media verification service is running.",
                    f"  Reviewer's desk (admin): {base}/admin/  {login}",
                    f"  REST API:                {base}/api/v1/   docs: {base}/api/v1/docs/",
                    f"  API token (admin):       {token_line}",
                    "  More users and tokens:   python3 manage.py create_api_user NAME",
                    f'  Submit a clip:           curl -H "Authorization: Token {token or "$TOKEN"}" '
                    f'-F file=@clip.mp4 -F title="..." -F claim="..." {base}/api/v1/media/',
                    "Press Ctrl-C to stop.",
                    "",
                ]
            )
        )
        self.stdout.flush()


def _forward_worker_output(stream: IO[bytes], ready: threading.Event) -> None:
    """Copy the worker's output to ours; set ``ready`` once it says it consumes."""
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
        if b" ready." in line:
            ready.set()


def _web_answers(bind: str) -> bool:
    """Return True once the web server answers HTTP at all (the admin login page)."""
    host = bind_host(bind)
    if bind.startswith(("unix:", "fd://")):
        return True  # nothing to poll over TCP; gunicorn reports its own start
    port = int(bind.rsplit(":", 1)[1]) if bind.endswith(tuple("0123456789")) and host != bind else 8000
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/admin/login/")
        connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()
    return True
