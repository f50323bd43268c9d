"""The template diff (deployed template vs new, parameters resolved on both sides) and the review a
reviewer can trust: the leaf that differs, never cut so before and after look the same; parameters old →
new with NoEcho masked; the Markdown review; to_json with every field."""

from __future__ import annotations

import io
import json

from market_cfn.deploy import Console, Overrides, render_review, review_markdown
from market_cfn.deploy.review.diff import StackIdentity, TemplateResolver, template_diff
from market_cfn.deploy.review.format import pair
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_dict
from tests.deploy_changesets import STACK_ID, change_set, detail, resource_change, review_of, template

PARAMS = {"EnvironmentSuffix": "dev", "CodeS3Bucket": "artifacts", "CodeS3Key": "market-data/a5847e1f.zip"}


def rendered(review) -> str:
    out = io.StringIO()
    render_review(review, Console(out=out, interactive=False))
    return out.getvalue()


def test_pseudo_parameters_come_from_the_stack_id():
    stack = StackIdentity.from_change_set({"StackId": STACK_ID})
    assert (stack.partition, stack.region, stack.account, stack.stack_name) == (
        "aws",
        "us-east-1",
        "123456789012",
        "market-data-dev",
    )
    resolver = TemplateResolver({}, {}, stack)
    assert resolver({"Fn::Sub": "arn:${AWS::Partition}:s3:::b-${AWS::AccountId}"}) == "arn:aws:s3:::b-123456789012"
    unknown = TemplateResolver({}, {}, StackIdentity())
    assert unknown({"Ref": "AWS::AccountId"}) == "${AWS::AccountId}"


def test_conditions_choose_the_branch_and_an_undecidable_one_keeps_both():
    tpl = {
        "Parameters": {"Env": {"Type": "String"}},
        "Conditions": {
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "Other": {"Fn::Equals": [{"Ref": "X"}, "1"]},
        },
    }
    value = {"Fn::If": ["IsProd", 3653, 7]}
    assert TemplateResolver(tpl, {"Env": "prod"}, StackIdentity())(value) == 3653
    assert TemplateResolver(tpl, {"Env": "dev"}, StackIdentity())(value) == 7
    assert TemplateResolver(tpl, {}, StackIdentity())({"Fn::If": ["Other", 1, 2]}) == {"Fn::If": ["Other", 1, 2]}


def test_a_new_code_zip_of_the_real_template_is_a_code_change_only_and_does_not_block():
    tpl = render_dict(StackConfig())
    new_params = {**PARAMS, "CodeS3Key": "market-data/9da86b2c.zip"}
    diffs = template_diff(tpl, tpl, PARAMS, new_params, StackIdentity.from_change_set({"StackId": STACK_ID}))
    assert {d.action for d in diffs.values()} == {"Modify"}
    assert {leaf.path for d in diffs.values() for leaf in d.leaves} == {"Properties.Code.S3Key"}
    cs = change_set(*(resource_change("Modify", lid, tpl["Resources"][lid]["Type"]) for lid in diffs))  # moto-style
    review = review_of(cs, tpl, tpl, old_parameters=PARAMS, new_parameters=new_params)
    assert review.findings == []
    text = rendered(review)
    assert "· Code.S3Key    market-data/a5847e1f.zip → market-data/9da86b2c.zip" in text
    assert "CodeS3Key          market-data/a5847e1f.zip → market-data/9da86b2c.zip" in text


def test_the_environment_renames_the_real_templates_stores_and_that_blocks():
    tpl = render_dict(StackConfig())
    prod = {**PARAMS, "EnvironmentSuffix": "prod"}
    cs = change_set(*(resource_change("Modify", lid, r["Type"]) for lid, r in tpl["Resources"].items()))
    review = review_of(cs, tpl, tpl, old_parameters=PARAMS, new_parameters=prod)
    replaced = {f.logical_id for f in review.violations if f.kind == "replacement"}
    assert {"MarketDataTable", "DataBucket", "RejectsBucket", "ProcessingQueue", "MarketEventArchive"} <= replaced


def test_long_values_are_cut_around_their_first_difference():
    before = "s3://market-data-artifacts-123456789012-us-east-1/market-data/" + "a5847e1f" * 8 + ".zip"
    after = before.replace("a5847e1f" * 8, "9da86b2c" * 8)
    b, a = pair(before, after, limit=40)
    assert b != a and "a5847e1f" in b and "9da86b2c" in a
    assert len(b) <= 42 and b.startswith("…")
    assert pair("short", "other") == ("short", "other")


def test_details_values_are_shown_leaf_by_leaf():
    cs = change_set(
        resource_change(
            "Modify",
            "Fn",
            "AWS::Lambda::Function",
            replacement="False",
            details=[
                detail(
                    "Code",
                    before=json.dumps({"S3Bucket": "artifacts", "S3Key": "market-data/" + "a" * 80 + ".zip"}),
                    after=json.dumps({"S3Bucket": "artifacts", "S3Key": "market-data/" + "a" * 79 + "b.zip"}),
                )
            ],
        )
    )
    review = review_of(cs)
    (change,) = review.changes
    ((path, before, after),) = change.leaves
    assert path == "Code.S3Key"
    line = next(line for line in rendered(review).splitlines() if "Code.S3Key" in line)
    shown_before, shown_after = line.split("in place", 1)[1].strip().split(" → ")
    assert shown_before != shown_after  # the difference (the last character) stays visible


def test_parameters_are_shown_old_to_new_and_no_echo_is_masked():
    tpl = template(Q={"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Secret"}}})
    tpl["Parameters"] = {"Secret": {"Type": "String", "NoEcho": True}, "Env": {"Type": "String"}}
    cs = change_set(resource_change("Modify", "Q", "AWS::SQS::Queue", replacement="False"))
    review = review_of(
        cs,
        tpl,
        tpl,
        old_parameters={"Secret": "hunter2", "Env": "dev"},
        new_parameters={"Secret": "hunter3", "Env": "prod"},
        no_echo=frozenset({"Secret"}),
    )
    assert review.parameters == [("Env", "dev", "prod"), ("Secret", "****", "****")]
    everything = rendered(review) + review_markdown(review) + json.dumps(review.to_json())
    assert "hunter" not in everything
    assert "Env     dev → prod" in rendered(review)
    # the masked value still shows that it changed, without the value
    assert ("Properties.QueueName", "****", "**** (changed)") in review.changes[0].leaves


def test_markdown_review_and_json_carry_the_findings_and_policy_action():
    cs = change_set(
        resource_change("Remove", "DataBucket", "AWS::S3::Bucket", policy_action="Retain"),
        resource_change(
            "Modify",
            "Logs",
            "AWS::Logs::LogGroup",
            replacement="False",
            details=[detail("RetentionInDays", before="3653", after="1")],
        ),
    )
    review = review_of(cs, overrides=Overrides(allow_unprotect=frozenset({"Logs"}), allow_drift=frozenset({"Nope"})))
    md = review_markdown(review)
    assert "**Blocked by the guard**" in md
    assert "- `DataBucket` (AWS::S3::Bucket) [removal]: removed (PolicyAction Retain)" in md
    assert "to allow: `--allow-replacement DataBucket`" in md
    assert "| Remove | `DataBucket` | AWS::S3::Bucket | - | Retain |" in md
    assert "RetentionInDays: 3653 → 1 (in place)" in md
    assert "`--allow-drift Nope`" in md
    data = review.to_json()
    assert [f["kind"] for f in data["Blocked"]] == ["removal"]
    assert [f["logical_id"] for f in data["Allowed"]] == ["Logs"]
    assert data["UnmatchedOverrides"] == ["--allow-drift Nope"]
    assert data["Changes"][0]["PolicyAction"] == "Retain"
    assert {"Findings", "BlockedUnderYes", "Notes", "Nested", "Parameters", "Iam"} <= set(data)
    text = rendered(review)
    assert "Guard: Logs (AWS::Logs::LogGroup) RetentionInDays 3653 → 1: allowed by --allow-unprotect Logs." in text
    assert "Guard: --allow-drift Nope matches nothing in this change set." in text


def test_broadening_is_printed_before_the_guard_verdict():
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    new = template(R={"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}})
    review = review_of(change_set(resource_change("Add", "R", "AWS::IAM::Role")), None, new)
    text = rendered(review)
    assert text.index("Security broadening (not executed under --yes without --allow-broadening):") < text.index(
        "Guard:"
    )
    assert "public principal *" in text
