"""What the archive search reads on PostgreSQL: an analyst's cases, parts of source URLs, viewer lexemes.

An analyst sees the cases they opened, are assigned to, or submitted media to
(``workflows.selectors``). With the case id inside each index, all three are read by
index-only scans, instead of a filter tried on every case and a hash of every item the
analyst submitted. The trigram index answers ``source_url__icontains`` (a part of a URL typed
into the search) without reading every case. Built concurrently, so a live archive keeps
taking writes; SQLite gets none of them (its search reads every row anyway).

Every search vector is rebuilt with its viewer lexemes (``workflows.search_index``), as
``search_vector()`` builds them from now on.
"""

from django.db import migrations

INDEXES = {
    "workflows_case_created_by_id_id": "workflows_case (created_by_id, id)",
    "workflows_case_assignee_id_id": "workflows_case (assignee_id, id)",
    "verify_mediaitem_uploaded_by_case": "verify_mediaitem (uploaded_by_id, case_id)",
    "workflows_case_source_url_trgm": "workflows_case USING gin (UPPER(source_url::text) gin_trgm_ops)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, target in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {target}")


VECTORS = """
UPDATE workflows_casesearchdocument d SET vector =
    setweight(to_tsvector('simple', coalesce(d.head, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(d.body, '')), 'B')
    || array_to_tsvector(ARRAY(SELECT DISTINCT '#viewer=' || viewer.id FROM (
        SELECT c.created_by_id AS id FROM workflows_case c WHERE c.id = d.case_id
        UNION ALL SELECT c.assignee_id FROM workflows_case c WHERE c.id = d.case_id AND c.assignee_id IS NOT NULL
        UNION ALL SELECT m.uploaded_by_id FROM verify_mediaitem m WHERE m.case_id = d.case_id
    ) viewer))
"""


def vectors(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(VECTORS)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workflows", "0010_reviewerpreference_time_zone"),
        ("verify", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, drop), migrations.RunPython(vectors, migrations.RunPython.noop)]
