"""The OpenAPI schema says what the server does: every operation documents the errors it can answer, in the one error
shape, and a strict request body (forge_site.api_inputs) says it takes no other keys.

Views declare their own success responses and the errors particular to them (409 for a taken name, 422 where a
request can be valid field by field and still not be carried out); `error_responses` adds the rest to every
operation under /api/, by rule, so an endpoint added later is documented the same way without repeating them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import AutoSchema

from forge_site.api_inputs import StrictSerializer

ERROR_COMPONENT = "ErrorOut"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}

# Every status the API answers in the error shape, as the schema describes it.
ERROR_DESCRIPTIONS: dict[str, str] = {
    "400": "invalid input: the request breaks this operation's schema (the message and `field` say where)",
    "401": "no credentials, or a bad, expired or revoked token",
    "403": "your role may not do this",
    "404": "no such object (or no such page of a list)",
    "406": "the Accept header excludes JSON",
    "409": "the state of a resource forbids the request",
    "413": "the request body is over its size limit",
    "415": "the body is not of a media type this operation takes",
    "422": "each field is valid but the request cannot be carried out as asked",
    "429": "too many requests: wait the seconds the Retry-After header gives",
    "503": "a service Forge depends on is unavailable; retry later",
}


class ForgeAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, marking the request bodies of strict serializers `additionalProperties: false`."""

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        if not vars(type(serializer)).get("__doc__"):
            schema.pop("description", None)  # a base class's docstring (StrictSerializer's) describes no request
        return schema


class FilterBackendExtension(DjangoFilterExtension):
    """The query parameters of forge_site.filters.FilterBackend: django-filter's, where a choice filter also takes
    the empty value, which means "any" (what the HTML list pages' forms send; the same FilterSets serve both)."""

    target_class = "forge_site.filters.FilterBackend"
    priority = 1

    def get_schema_operation_parameters(self, auto_schema: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(auto_schema, *args, **kwargs)
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if schema.get("type") == "string" and "enum" in schema and "" not in schema["enum"]:
                parameter["schema"] = {**schema, "enum": [*schema["enum"], ""]}
        return parameters


def _statuses(path: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses any operation like this one can answer, besides those its view declares."""
    query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
    has_body = "requestBody" in operation
    statuses = ["401", "403", "406", "429", "503"]
    if query or has_body:
        statuses.append("400")
    if "{" in path or any(p["name"] == "page" for p in query):
        statuses.append("404")
    if has_body:
        statuses += ["413", "415"]
    return statuses


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error responses of every /api/ operation, in the error shape."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        ERROR_COMPONENT,
        {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string", "nullable": True},
                    },
                    "required": ["code", "message", "field"],
                }
            },
            "required": ["error"],
        },
    )
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, operation):
                responses.setdefault(
                    status,
                    {
                        "description": ERROR_DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
    return result
