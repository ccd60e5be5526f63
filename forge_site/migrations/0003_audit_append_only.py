"""On PostgreSQL the audit table refuses UPDATE and DELETE at the database level."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION forge_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'forge_site_auditevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS forge_audit_append_only ON forge_site_auditevent;
CREATE TRIGGER forge_audit_append_only BEFORE UPDATE OR DELETE ON forge_site_auditevent
    FOR EACH ROW EXECUTE FUNCTION forge_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS forge_audit_append_only ON forge_site_auditevent;
DROP FUNCTION IF EXISTS forge_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("forge_site", "0002_role_groups")]
    operations = [migrations.RunPython(forwards, backwards)]
