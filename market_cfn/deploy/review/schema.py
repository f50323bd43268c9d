"""Which properties of a resource type can only be set at creation: the CloudFormation resource schemas
that cfn-lint ships (`createOnlyProperties`), plus the few the schemas leave out."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# Properties whose change replaces the resource although the registry schema does not list them as
# createOnlyProperties. Each is "Update requires: Replacement" in the CloudFormation template reference
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-dynamodb-table.html:
# KeySchema and LocalSecondaryIndexes).
EXTRA_CREATE_ONLY: dict[str, tuple[str, ...]] = {
    "AWS::DynamoDB::Table": ("/properties/KeySchema", "/properties/LocalSecondaryIndexes"),
}

DEFAULT_REGION = "us-east-1"


class UnknownSchema(LookupError):
    """No resource schema for the type (a custom or third-party type, or a type newer than cfn-lint)."""


@lru_cache(maxsize=512)
def create_only_paths(resource_type: str, region: str = DEFAULT_REGION) -> tuple[tuple[str, ...], ...]:
    """The create-only properties of a type as key paths under Properties, e.g. (("TableName",),).
    Array items in a pointer ("/properties/Rules/*/Name") are "*". Raises UnknownSchema."""
    schema = _schema(resource_type, region)
    pointers = list(schema.get("createOnlyProperties") or []) + list(EXTRA_CREATE_ONLY.get(resource_type, ()))
    paths = []
    for pointer in pointers:
        parts = [p for p in str(pointer).split("/") if p]
        if parts and parts[0] == "properties":
            paths.append(tuple(parts[1:]))
    return tuple(sorted(set(paths)))


def resource_schema(resource_type: str, region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The CloudFormation registry schema of a type as cfn-lint ships it. Raises UnknownSchema."""
    return _schema(resource_type, region)


def _schema(resource_type: str, region: str) -> dict[str, Any]:
    if not resource_type.startswith("AWS::"):
        # Custom::*, third-party and private registry types: cfn-lint has no provider schema for them.
        raise UnknownSchema(resource_type)
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError  # type: ignore[import-untyped]

    for candidate in (region, DEFAULT_REGION):
        try:
            schema: dict[str, Any] = PROVIDER_SCHEMA_MANAGER.get_resource_schema(candidate, resource_type).schema
            return schema
        except (ResourceNotFoundError, KeyError):  # KeyError: a region cfn-lint does not know
            continue
    raise UnknownSchema(resource_type)


def values_at(props: Any, path: tuple[str, ...]) -> Any:
    """The value at a key path ("*" maps over a list); None where absent."""
    if not path:
        return props
    head, rest = path[0], path[1:]
    if head == "*":
        return [values_at(item, rest) for item in props] if isinstance(props, list) else None
    if isinstance(props, dict):
        return values_at(props.get(head), rest) if head in props else None
    return None
