"""Two new versions of one note at the same moment: one is written, the other gets a 409."""

import threading
from typing import Any

import pytest
from django.db import connection

from tests.conftest import make_user, token_client
from workflows import services
from workflows.models import AuditEvent, Note

ROUNDS = 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_new_versions_of_a_note_one_wins_the_other_gets_409():
    # given: a note, and its author editing it from two clients at once, several times over
    author = make_user("rev", "reviewer")
    case = services.case_create(title="Claim", claim="Claim", created_by=author)
    answers: list[tuple[int, str]] = []
    for round_number in range(ROUNDS):
        note = services.note_add(case=case, author=author, body=f"Draft {round_number}.")
        barrier = threading.Barrier(2)

        def edit(body: str, note_id: int = note.pk, barrier: Any = barrier) -> None:
            client = token_client(author)
            try:
                barrier.wait()
                response = client.post(
                    f"/api/v1/cases/{case.pk}/notes/", {"body": body, "replaces": note_id}, format="json"
                )
                code = response.json()["error"]["code"] if response.status_code >= 400 else ""
                answers.append((response.status_code, code))
            finally:
                connection.close()

        threads = [threading.Thread(target=edit, args=(f"Version {n}.",)) for n in "ab"]
        # when
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # then: every round has one new version and one clear refusal, never a 500
    assert sorted(answers) == sorted([(201, ""), (409, "note_replaced")] * ROUNDS)
    assert Note.objects.filter(replaces__isnull=False).count() == ROUNDS
    assert AuditEvent.objects.filter(action="note_edited").count() == ROUNDS
