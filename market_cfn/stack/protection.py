"""DeletionPolicy / UpdateReplacePolicy, stated explicitly on every stateful resource."""

from __future__ import annotations

from troposphere import AWSObject

DELETE = "Delete"
RETAIN = "Retain"


def protect(resource: AWSObject, *, retain: bool) -> AWSObject:
    """Keep (Retain) or delete the resource's data when CloudFormation deletes or replaces it.

    The default template is fully destroyable, as the original design requires;
    `render --retain-data` switches the data stores to Retain for production.
    """
    policy = RETAIN if retain else DELETE
    resource.DeletionPolicy = policy
    resource.UpdateReplacePolicy = policy
    return resource
