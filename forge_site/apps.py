from django.apps import AppConfig


class ForgeSiteConfig(AppConfig):
    name = "forge_site"
    verbose_name = "Forge"

    def ready(self) -> None:
        from forge_site import checks, signals  # noqa: F401  (system checks, login audit receivers)
