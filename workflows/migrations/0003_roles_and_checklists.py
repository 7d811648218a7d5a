"""Create the analyst, reviewer and lead groups, and give existing cases their checklist."""

from django.db import migrations

ROLES = ("analyst", "reviewer", "lead")
CHECKLIST_KEYS = ("provenance", "source", "date", "location", "motivation")


def forwards(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    for name in ROLES:
        group_model.objects.get_or_create(name=name)
    case_model = apps.get_model("workflows", "Case")
    item_model = apps.get_model("workflows", "ChecklistItem")
    for case in case_model.objects.all():
        for key in CHECKLIST_KEYS:
            item_model.objects.get_or_create(case=case, key=key)


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("workflows", "0002_review"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
