import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models
from django.db.models.functions import Lower


def refuse_names_that_differ_only_in_case(apps, schema_editor):
    """The constraint cannot be added while two models share a name ignoring case (created by concurrent requests
    before it existed). Renaming someone's model is not a migration's call: say which ones, and stop."""
    registered_model = apps.get_model("models_registry", "RegisteredModel")
    clashes = (
        registered_model.objects.annotate(lowered=Lower("name"))
        .values("lowered")
        .annotate(count=models.Count("id"))
        .filter(count__gt=1)
        .values_list("lowered", flat=True)
    )
    if clashes:
        names = sorted(
            registered_model.objects.annotate(lowered=Lower("name"))
            .filter(lowered__in=list(clashes))
            .values_list("name", flat=True)
        )
        raise RuntimeError(
            "These models have names that differ only in case, which Forge no longer allows: "
            + ", ".join(names)
            + ". Retire or rename all but one of each (in the admin) and run the migration again."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("models_registry", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(refuse_names_that_differ_only_in_case, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="registeredmodel",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"), name="model_name_unique_ignoring_case"
            ),
        ),
    ]
