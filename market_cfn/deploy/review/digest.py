"""What a review saw, as one digest: `--no-execute` prints it, `--execute ARN --reviewed-sha256 H`
executes only when the change set and the stack are still exactly what was reviewed.

The digest covers what pins the change (the change set's id, its changes with property values
and its parameters, the nested change sets the same way) and what pins the stack it applies to
(the deployed template and the stack's parameter values): all read from CloudFormation the same
way on both runs, so the same state gives the same digest, and a stack updated since the review
(another deploy, a console edit) gives another. Pure: no AWS calls here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from market_cfn.deploy.review.model import ReviewInput

_CHANGE_SET_KEYS = ("ChangeSetId", "StackId", "Parameters", "Changes")


def _content(inputs: ReviewInput) -> dict[str, Any]:
    change_set = {key: inputs.change_set.get(key) for key in _CHANGE_SET_KEYS}
    return {
        "change_set": change_set,
        "deployed_template": inputs.deployed_template,
        "stack_parameters": dict(inputs.old_parameters),
        "nested": {key: _content(child) for key, child in sorted(inputs.nested.items())},
    }


def review_digest(inputs: ReviewInput) -> str:
    """sha256 hex of the reviewed state, canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(_content(inputs), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_reviewed(expected: str, inputs: ReviewInput) -> str | None:
    """None when `expected` (from --reviewed-sha256) is this state's digest; else the reason."""
    actual = review_digest(inputs)
    if expected.lower() == actual:
        return None
    return (
        f"the change set or its stack changed since the review (reviewed sha256 {expected[:12]}..., now "
        f"{actual[:12]}...): nothing executed; create and review a new change set"
    )
