"""Create (or find) a user and print its API token; replace the token with --rotate."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create a user (or reuse an existing one) and print its API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="Also set a password, for logging into the admin.")
        parser.add_argument("--staff", action="store_true", help="Allow the user into the admin.")
        parser.add_argument("--superuser", action="store_true")
        parser.add_argument(
            "--role",
            action="append",
            choices=["analyst", "reviewer", "lead"],
            help="Workflow role (repeatable); a new user without one becomes an analyst.",
        )
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="Replace the existing user's token with a new one; the old token stops working at once.",
        )

    def handle(self, *args: Any, username: str, email: str, password: str | None, **options: Any) -> None:
        if not username.strip():
            raise CommandError("The username must not be empty.")
        user_model = get_user_model()
        if options["rotate"] and not user_model.objects.filter(username=username).exists():
            raise CommandError(f"No user {username!r}; create it first: python3 manage.py create_api_user {username}")
        user, created = user_model.objects.get_or_create(username=username, defaults={"email": email})
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        if options["staff"] or options["superuser"]:
            user.is_staff = True
        if options["superuser"]:
            user.is_superuser = True
        user.save()
        roles = options["role"] or (["analyst"] if created else [])
        if roles:
            missing = set(roles) - set(Group.objects.filter(name__in=roles).values_list("name", flat=True))
            if missing:
                raise CommandError(f"Role groups are missing ({', '.join(sorted(missing))}); run migrate first.")
            user.groups.add(*Group.objects.filter(name__in=roles))
        with transaction.atomic():
            if options["rotate"]:
                Token.objects.filter(user=user).delete()
            token, _ = Token.objects.get_or_create(user=user)
        self.stderr.write(f"{'Created' if created else 'Found'} user {username!r}.")
        if options["rotate"]:
            self.stderr.write("Replaced the API token; the old one no longer works.")
        self.stdout.write(token.key)
