"""The desk's name on every page, and account pages that only superusers see."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.conftest import make_user

ACCOUNT_PAGES = [
    "/admin/auth/user/",
    "/admin/auth/group/",
    "/admin/authtoken/tokenproxy/",
    "/admin/axes/accessattempt/",
]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def title_and_header(page: str) -> tuple[str, str]:
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    header = re.search(r'<div id="site-name">(.*?)</div>', page, re.S)
    assert title and header
    return html.unescape(title[1].strip()), html.unescape(re.sub(r"<[^>]+>", "", header[1]).strip())


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["reviewer", "analyst", "lead"])
def test_desk_pages_are_named_the_reviewers_desk_and_hide_accounts_from_roles(role):
    # given: a role holder who was also handed the permission to view users, by mistake
    user = make_user(f"{role}-1", role, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_user"))
    client = logged_in(user)

    # when
    index = client.get("/admin/")
    cases = client.get("/admin/workflows/case/")

    # then
    assert index.status_code == cases.status_code == 200
    index_html, cases_html = index.content.decode(), cases.content.decode()
    assert title_and_header(index_html) == ("Cases and media | Reviewer's desk", "Reviewer's desk")
    assert title_and_header(cases_html) == ("Cases | Reviewer's desk", "Reviewer's desk")
    for page in (index_html, cases_html):
        assert "Django administration" not in page and "Site administration" not in page
        assert not any(path in page for path in ACCOUNT_PAGES)
    assert 'href="/admin/workflows/case/"' in index_html and 'href="/admin/verify/mediaitem/"' in index_html
    assert [client.get(path).status_code for path in ACCOUNT_PAGES] == [403] * len(ACCOUNT_PAGES)


@pytest.mark.django_db
def test_a_superuser_manages_users_groups_and_tokens():
    client = logged_in(make_user("root", is_staff=True, is_superuser=True))

    index = client.get("/admin/").content.decode()

    assert all(path in index for path in ACCOUNT_PAGES)
    assert [client.get(path).status_code for path in ACCOUNT_PAGES] == [200] * len(ACCOUNT_PAGES)
