"""Keep only same-case item ids in the ``duplicate_of`` of recorded media submissions.

The id of a copy in another case told everyone reading this case's history that the other case
exists, though they may not be allowed to see it. New events name an earlier copy only when it is
in the same case; this rewrites the events recorded before that to the same rule.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    event_model = apps.get_model("workflows", "AuditEvent")
    item_model = apps.get_model("verify", "MediaItem")
    events = event_model.objects.filter(action="media_submitted", after__has_key="duplicate_of")
    for event in events.exclude(after__duplicate_of=None).iterator():
        item = item_model.objects.filter(pk=event.object_id).only("pk", "case_id", "sha256").first()
        same_case = None
        if item is not None:
            earlier = item_model.objects.filter(case_id=item.case_id, sha256=item.sha256, pk__lt=item.pk)
            same_case = earlier.order_by("pk").values_list("pk", flat=True).first()
        if event.after["duplicate_of"] != same_case:
            event.after = {**event.after, "duplicate_of": same_case}
            # The historical model has no append-only guard; this is the one sanctioned rewrite.
            event_model.objects.filter(pk=event.pk).update(after=event.after)


class Migration(migrations.Migration):
    dependencies = [
        ("verify", "0003_recycled_footage"),
        ("workflows", "0003_roles_and_checklists"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
