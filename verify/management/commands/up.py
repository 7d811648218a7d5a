"""Set up the database and run the web server and an analysis worker on this machine."""

import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

_STOP_GRACE_S = 20


class Command(BaseCommand):
    help = "Migrate, make sure an admin account exists, then run gunicorn and a Celery worker until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("VERIFY_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--concurrency", type=int, default=2, help="Parallel analyses in the worker.")

    def handle(self, *args: Any, bind: str, web_workers: int, concurrency: int, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        password, token = self._admin_credentials()
        queues = f"{settings.VERIFY_ANALYSIS_QUEUE},{settings.CELERY_TASK_DEFAULT_QUEUE}"
        commands = {
            "worker": [sys.executable, "-m", "celery", "-A", "verify", "worker", "-Q", queues,
                       "--concurrency", str(concurrency), "-l", "info"],
            "web": [sys.executable, "-m", "gunicorn", "verify.wsgi:application", "--bind", bind,
                    "--workers", str(web_workers), "--timeout", "600", "--access-logfile", "-"],
        }  # fmt: skip
        processes = {name: subprocess.Popen(argv) for name, argv in commands.items()}  # noqa: S603
        self._announce(bind, password, token)
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            exited = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
            if exited:
                name, exit_code = next(iter(exited.items()))
                self.stderr.write(f"The {name} process stopped (exit code {exit_code}); stopping the service.")
                break
            time.sleep(0.5)
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

    def _admin_credentials(self) -> tuple[str | None, str]:
        user_model = get_user_model()
        admin = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        password = None
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = user_model.objects.create_superuser("admin", email="", password=password)
        token, _ = Token.objects.get_or_create(user=admin)
        return password, token.key

    def _announce(self, bind: str, password: str | None, token: str) -> None:
        base = f"http://{bind}"
        login = (
            f"user admin, password {password} (shown once; change it with: python3 manage.py changepassword admin)"
            if password
            else "log in with your admin account (reset: python3 manage.py changepassword admin)"
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Media verification service is running.",
                    f"  Reviewer's desk (admin): {base}/admin/  {login}",
                    f"  REST API:                {base}/api/v1/   docs: {base}/api/v1/docs/",
                    f"  API token (admin):       {token}",
                    "  More users and tokens:   python3 manage.py create_api_user NAME",
                    f'  Submit a clip:           curl -H "Authorization: Token {token}" -F file=@clip.mp4 '
                    f'-F title="..." -F claim="..." {base}/api/v1/media/',
                    "Press Ctrl-C to stop.",
                    "",
                ]
            )
        )
