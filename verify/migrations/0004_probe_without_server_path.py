"""Remove ``format.filename`` from stored ffprobe answers: it is the original's path on the server.

The analysis no longer stores it; this strips it from the metadata recorded before.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    metadata_model = apps.get_model("verify", "MediaMetadata")
    for metadata in metadata_model.objects.filter(raw__format__has_key="filename").only("pk", "raw").iterator():
        fmt = {key: value for key, value in metadata.raw["format"].items() if key != "filename"}
        metadata_model.objects.filter(pk=metadata.pk).update(raw={**metadata.raw, "format": fmt})


class Migration(migrations.Migration):
    dependencies = [("verify", "0003_recycled_footage")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
