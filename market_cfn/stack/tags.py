"""Tags on every taggable resource: Environment (from the EnvironmentTag parameter) and Project."""

from __future__ import annotations

from troposphere import Tags, Template

from market_cfn.stack.parameters import Params

PROJECT = "MarketAnalytics"


def tag_all(t: Template, params: Params) -> int:
    """Tag every resource whose type takes a Tags list; returns how many were tagged."""
    tagged = 0
    for resource in t.resources.values():
        if "Tags" in type(resource).props:
            resource.Tags = Tags(Environment=params.environment_tag.ref(), Project=PROJECT)
            tagged += 1
    return tagged
