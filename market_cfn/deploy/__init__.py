"""Change-set deploys: the AWS steps in this package, the pure review logic in `deploy.review`.

Steps, in the order a deploy runs them: settings (deploy.toml) - packaging and artifacts
(content-addressed uploads) - bootstrap (the artifacts bucket's stack) - preflight and retained
(is the stack ready, do retained names exist) - changeset (create, wait, every page) - inputs (every
signal the review reads) - drift - gate (print the review, refuse what the guard blocks, confirm) -
backstop (stack policy, termination protection) and triggers (rollback alarms) - follow (execute and
events) - outputs; flow runs one whole deploy, command is bin/deploy's core (the command line and
deploy.toml resolved, which deploy runs, the exit code), dryrun is the side-effect-free `diff`. Every function
that talks to AWS takes its boto3 client(s) as arguments. STYLE.md "Layout" and CONTRIBUTING.md say
which module may import which.

The names below are what a library caller needs for a whole deploy and for a review of its own;
everything else is imported from its module.
"""

from market_cfn.base.aws import Where
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError, Refused, UsageError
from market_cfn.base.waits import Waits
from market_cfn.deploy.changeset import ChangeSetRequest
from market_cfn.deploy.flow import deploy_stack
from market_cfn.deploy.gate import DeployOptions, Outcome
from market_cfn.deploy.review.format import render_review, review_markdown
from market_cfn.deploy.review.guard import stateful_logical_ids
from market_cfn.deploy.review.merge import build_review
from market_cfn.deploy.review.model import Overrides, Review, ReviewInput
from market_cfn.deploy.settings import load_settings

__all__ = [
    "ChangeSetRequest",
    "Console",
    "DeployError",
    "DeployOptions",
    "Outcome",
    "Overrides",
    "Refused",
    "Review",
    "ReviewInput",
    "UsageError",
    "Waits",
    "Where",
    "build_review",
    "deploy_stack",
    "load_settings",
    "render_review",
    "review_markdown",
    "stateful_logical_ids",
]
