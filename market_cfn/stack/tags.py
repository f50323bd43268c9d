"""Tags on every taggable resource: Environment (from the EnvironmentTag parameter) and Project."""

from __future__ import annotations

from troposphere import Tags, Template

from market_cfn.stack.parameters import Params

PROJECT = "MarketAnalytics"
# Not tagged by the template: moto 5.2's CloudFormation cannot create a tagged KMS key (it
# reads the KMS API's TagKey/TagValue instead of CloudFormation's Key/Value), and the local
# deploy (bin/deploy against moto_server) must keep working. The key is named by its alias
# (alias/market-data-<env>) and description; stack tags from `bin/deploy --tag` reach it.
UNTAGGED_TYPES = frozenset({"AWS::KMS::Key"})


def tag_all(t: Template, params: Params) -> int:
    """Tag every resource whose type takes a Tags list; returns how many were tagged."""
    tagged = 0
    for resource in t.resources.values():
        if "Tags" in type(resource).props and resource.resource_type not in UNTAGGED_TYPES:
            resource.Tags = Tags(Environment=params.environment_tag.ref(), Project=PROJECT)
            tagged += 1
    return tagged
