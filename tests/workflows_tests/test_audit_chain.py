"""The audit trail's hash chain: written with every event, checked by verify_audit_chain."""

import threading
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.conftest import make_user
from workflows import audit_chain, services
from workflows.models import AuditEvent, Case


def open_case(owner: Any, title: str = "Claimed strike") -> Case:
    return services.case_create(title=title, claim="Shows a strike", created_by=owner)


@pytest.mark.django_db
def test_every_event_is_chained_to_the_one_before_it_in_its_case():
    # given
    analyst = make_user("ana", "analyst")
    first, second = open_case(analyst, "first"), open_case(analyst, "second")
    services.note_add(case=first, author=analyst, body="Шахта на заднем плане; لافتة بالعربية")
    services.checklist_update(
        case=first, key="source", actor=make_user("rev", "reviewer"), state="done", finding="The uploader."
    )
    # then
    events = list(AuditEvent.objects.filter(case=first).order_by("id"))
    assert [event.action for event in events] == ["case_opened", "note_added", "checklist_changed"]
    assert events[0].previous_hash == audit_chain.GENESIS_HASH
    assert [event.previous_hash for event in events[1:]] == [event.entry_hash for event in events[:-1]]
    assert AuditEvent.objects.get(case=second).previous_hash == audit_chain.GENESIS_HASH
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    assert "Every audit chain holds." in out.getvalue()


@pytest.mark.django_db
def test_verify_audit_chain_names_the_event_whose_row_was_edited():
    # given: a case with three events, and another case left alone
    analyst = make_user("ana", "analyst")
    case, untouched = open_case(analyst), open_case(analyst, "untouched")
    services.note_add(case=case, author=analyst, body="First look.")
    services.note_add(case=case, author=analyst, body="Second look.")
    edited = AuditEvent.objects.filter(case=case, action="note_added").order_by("id").first()
    # when: someone edits the row behind the service's back
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE workflows_auditevent SET after = %s WHERE id = %s", ['{"body": "Nothing to see."}', edited.pk]
        )
    # then
    err = StringIO()
    with pytest.raises(CommandError, match="1 audit chain"):
        call_command("verify_audit_chain", stderr=err)
    assert err.getvalue().strip() == (
        f"case {case.pk}: the audit chain breaks at event {edited.pk}: its content does not match its hash"
    )
    call_command("verify_audit_chain", case=[untouched.pk], stdout=StringIO())


@pytest.mark.django_db
def test_a_removed_event_breaks_the_chain_at_the_next_one():
    analyst = make_user("ana", "analyst")
    case = open_case(analyst)
    services.note_add(case=case, author=analyst, body="One.")
    services.note_add(case=case, author=analyst, body="Two.")
    middle, last = AuditEvent.objects.filter(case=case, action="note_added").order_by("id")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workflows_auditevent WHERE id = %s", [middle.pk])
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit_chain", stderr=err)
    assert f"breaks at event {last.pk}: it does not follow the event before it" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_events_written_at_once_for_one_case_chain_one_after_the_other():
    # given
    analyst = make_user("ana", "analyst")
    case = open_case(analyst)
    barrier = threading.Barrier(4)

    def write(n: int) -> None:
        try:
            barrier.wait()
            services.note_add(case=Case.objects.get(pk=case.pk), author=analyst, body=f"note {n}")
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: five events, one chain, no fork
    events = list(AuditEvent.objects.filter(case=case).order_by("id"))
    assert len(events) == 5
    assert len({event.previous_hash for event in events}) == 5
    call_command("verify_audit_chain", stdout=StringIO())
