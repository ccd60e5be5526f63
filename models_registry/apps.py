from django.apps import AppConfig


class ModelsRegistryConfig(AppConfig):
    name = "models_registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from models_registry import receivers  # noqa: F401  (an inspection that ends early settles its version)
