"""Write every IAM policy document of a rendered template as a concrete JSON file.

parliament lints policy documents, not templates, and wants concrete ARNs. This module
resolves the template's intrinsic functions (Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
Fn::If) against an example account and region, so each role policy and each bucket,
queue and topic policy can be linted exactly as CloudFormation would deploy it.

    python -m market_cfn.stack.policy_export build/template.json OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from market_cfn.intrinsics import IntrinsicResolver

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "market-data",
    "AWS::NoValue": None,
}
# Placeholder values for parameters without a default.
PARAMETER_EXAMPLES = {"CodeS3Bucket": "market-data-artifacts-example", "CodeS3Key": "market-data/0123abcd.zip"}


class Resolver(IntrinsicResolver):
    """Resources resolve to example ARNs built from their names, in ACCOUNT and REGION."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = template.get("Parameters", {})

    def _name(self, logical_id: str, prop: str) -> str:
        return self.resolve(self.resources[logical_id]["Properties"].get(prop, logical_id))

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name].get("Default", PARAMETER_EXAMPLES.get(name, f"example-{name}"))
        kind = self.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self._name(name, 'QueueName')}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{self._name(name, 'TopicName')}"
        if kind == "AWS::KMS::Key":
            return "0123abcd-4567-89ef-0123-456789abcdef"
        names = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::Events::EventBus": "Name",
            "AWS::Events::Rule": "Name",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::IAM::Role": "RoleName",
        }
        if kind in names:
            return self._name(name, names[kind])
        return f"{name.lower()}-id"

    def get_att(self, name: str, attribute: str) -> Any:
        kind = self.resources[name]["Type"]
        arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
        if attribute == "Arn":
            if kind == "AWS::SQS::Queue":
                return arn.format("sqs", self._name(name, "QueueName"))
            if kind == "AWS::DynamoDB::Table":
                return arn.format("dynamodb", f"table/{self.ref(name)}")
            if kind == "AWS::Events::EventBus":
                return arn.format("events", f"event-bus/{self.ref(name)}")
            if kind == "AWS::Events::Rule":
                return arn.format("events", f"rule/{self.ref(name)}")
            if kind == "AWS::Logs::LogGroup":
                return arn.format("logs", f"log-group:{self.ref(name)}:*")
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.ref(name)}"
            if kind == "AWS::Lambda::Function":
                return arn.format("lambda", f"function:{self.ref(name)}")
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{ACCOUNT}:role/{name}"
            if kind == "AWS::KMS::Key":
                return arn.format("kms", f"key/{self.ref(name)}")
        if attribute == "QueueName":
            return self._name(name, "QueueName")
        return f"{name}.{attribute}"


def policy_documents(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{file stem: concrete policy document} for every policy the template deploys."""
    resolver = Resolver(template)
    documents: dict[str, dict[str, Any]] = {}
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                documents[f"{logical_id}.{policy['PolicyName']}"] = resolver.resolve(policy["PolicyDocument"])
        elif kind in (
            "AWS::S3::BucketPolicy",
            "AWS::SQS::QueuePolicy",
            "AWS::SNS::TopicPolicy",
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
        ):
            documents[logical_id] = resolver.resolve(props["PolicyDocument"])
        # KMS key policies are not exported: in a key policy `"Resource": "*"` means "this
        # key" and is the only form (KMS developer guide, "Key policies"), which parliament
        # reads as an unscoped grant. tests/test_template_regulated.py checks them.
    return documents


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m market_cfn.stack.policy_export TEMPLATE.json OUT_DIR", file=sys.stderr)
        return 2
    prog = "policy_export"
    try:
        template = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"{prog}: cannot read {argv[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        print(f"{prog}: {argv[0]} is not a JSON template: {exc}", file=sys.stderr)
        return 2
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        print(f"{prog}: {argv[0]} is not a CloudFormation template (no Resources object)", file=sys.stderr)
        return 2
    out = Path(argv[1])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"{prog}: cannot create {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    documents = policy_documents(template)
    for stem, document in documents.items():
        (out / f"{stem}.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(documents)} policy documents to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
