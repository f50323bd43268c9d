"""Least privilege: each function's role allows exactly what its code calls.

The end-to-end scenario below drives every path of the three handlers through the real
code on moto, while a botocore hook (market_cfn.simulate, `provide-client-params`)
records each API call a handler makes as its IAM action (SendMessageBatch ->
sqs:SendMessage, GetObject with VersionId -> s3:GetObjectVersion) and the ARN it acts
on. The comparison is per (action, resource): DataIngestion's sqs:SendMessage on the
ProcessingQueue is the code's, the same action on InvocationDLQ is the Lambda service's
(asynchronous-invocation failures), and an action-only comparison could not tell them
apart. Runtime/service grants are excused only when the action is listed in
market_cfn.stack.policies.RUNTIME_ACTIONS (the one list of them) *and* the resource is one
the service uses for that function in the template (its log group, "*" for X-Ray, its
OnFailure destination / DeadLetterConfig, its event source mapping's queue).
"""

from __future__ import annotations

from collections import defaultdict
from fnmatch import fnmatchcase

import pytest
from conftest import load_event

from market_cfn.simulate import FUNCTIONS, Pipeline


def _resolve(pipe: Pipeline, value) -> str:
    """A resource of the template as the emulated ARN, or "<Logical>.<Attr>" when the
    emulation does not create it (log groups)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][0] not in pipe.physical:
        return "{}.{}".format(*value["Fn::GetAtt"])
    if (
        isinstance(value, dict)
        and "Ref" in value
        and value["Ref"] in pipe.resources
        and value["Ref"] not in pipe.physical
    ):
        return f"{value['Ref']}.Arn"
    return str(pipe.resolve(value))


def granted_pairs(pipe: Pipeline, role: str) -> set[tuple[str, str]]:
    props = pipe.resources[role]["Properties"]
    assert not props.get("ManagedPolicyArns"), "managed policies would hide actions from this test"
    pairs = set()
    for policy in props.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            pairs |= {(a, _resolve(pipe, r)) for a in actions for r in resources}
    return pairs


def runtime_resources(pipe: Pipeline, function: str) -> set[str]:
    """What the Lambda service uses with this function's role, per the template."""
    found = {"*"}
    props = pipe.resources[function]["Properties"]
    if "LoggingConfig" in props:
        found.add(_resolve(pipe, props["LoggingConfig"]["LogGroup"]))
    if "DeadLetterConfig" in props:
        found.add(_resolve(pipe, props["DeadLetterConfig"]["TargetArn"]))
    for res in pipe.resources.values():
        p = res.get("Properties", {})
        if p.get("FunctionName") != {"Ref": function}:
            continue
        if res["Type"] == "AWS::Lambda::EventInvokeConfig":
            on_failure = p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if on_failure:
                found.add(_resolve(pipe, on_failure))
        if res["Type"] == "AWS::Lambda::EventSourceMapping":
            found.add(_resolve(pipe, p["EventSourceArn"]))
    return found


def _failing_points_stored_for(symbol: str, events_client):
    """PutEvents that refuses the processor's PointsStored events naming `symbol`."""
    from conftest import client_error

    original = events_client.put_events

    def put_events(**kwargs):
        if any(e["Source"] == "market-data.processor" and f'"{symbol}"' in e["Detail"] for e in kwargs["Entries"]):
            raise client_error("AccessDeniedException", "PutEvents")
        return original(**kwargs)

    return put_events


@pytest.fixture(scope="module")
def exercised():
    """Every handler path: S3 (versioned, unversioned, with rejections), API, processor
    (and its direct path while PutEvents fails), aggregator with finished windows, the
    current, unfinished one, and a window it must dead-letter."""
    import handlers.common as common

    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    with Pipeline(on_request=lambda call: seen[call.actor].add((call.iam_action, call.resource))) as pipe:
        saved_sleep, common.sleep = common.sleep, lambda seconds: None
        events_client = common.client("events")
        events_client.put_events = _failing_points_stored_for("MSFT", events_client)
        try:
            pipe.put_object("AAPL/a.csv", b"timestamp,price,volume\n1717421400,192.9,10\n1717421401,-1,1\n")
            pipe.deliver_s3_events()
            # deleted before its event is handled: the named version is read (s3:GetObjectVersion)
            pipe.put_object("AAPL/b.csv", b"timestamp,price\n1717421402,193\n")
            pipe.s3.delete_object(Bucket=pipe.bucket, Key="AAPL/b.csv")
            pipe.deliver_s3_events()
            pipe.s3.put_object(
                Bucket=pipe.bucket, Key="MSFT/2024-06-03.jsonl", Body=b'{"price":415,"timestamp":1717421400}\n'
            )
            event = load_event("s3_put_unversioned")
            event["Records"][0]["s3"]["bucket"]["name"] = pipe.bucket
            pipe.invoke("DataIngestionFunction", event)
            assert pipe.post_ingest('{"symbol":"NVDA","price":1150.25}')["statusCode"] == 202  # now: unfinished
            pipe.drain_processing_queue()
            # a window whose aggregate DynamoDB cannot store (volume sum of 39 digits),
            # written past ingestion's limits: the aggregator dead-letters it
            for ts in (1717421400000, 1717421401000):
                pipe.ddb.put_item(
                    TableName=pipe.table,
                    Item={
                        "symbol": {"S": "HUGE"},
                        "timestamp": {"N": str(ts)},
                        "price": {"N": "1"},
                        "volume": {"N": "9" * 38},
                    },
                )
            pipe.sqs.send_message(
                QueueUrl=pipe.queue_urls["AggregationQueue"],
                MessageBody='{"v":1,"points":2,"windows":[["HUGE",1717421400000]]}',
            )
            pipe.run_aggregator()
            assert pipe.queue_depth("AggregationDLQ") == 1
        finally:
            common.sleep = saved_sleep
            del events_client.put_events
        yield pipe, dict(seen)


def compare(pipe: Pipeline, called: set[tuple[str, str]], function: str, runtime_actions: frozenset[str]):
    """(calls the role does not allow, grants neither the code nor the service uses)."""
    role = pipe.role_of(function)
    granted = granted_pairs(pipe, role)

    def allows(grant, call):
        return grant[0] == call[0] and fnmatchcase(call[1], grant[1])

    missing = sorted(c for c in called if not any(allows(g, c) for g in granted))
    service_used = runtime_resources(pipe, function)
    unused = sorted(
        g
        for g in granted
        if not any(allows(g, c) for c in called) and not (g[0] in runtime_actions and g[1] in service_used)
    )
    return missing, unused


def _runtime_actions():
    try:
        from market_cfn.stack.policies import RUNTIME_ACTIONS
    except ImportError as exc:  # fail loudly: the template must provide the list
        pytest.fail(f"market_cfn.stack.policies.RUNTIME_ACTIONS is missing ({exc}); the template has not landed")
    return RUNTIME_ACTIONS


@pytest.mark.parametrize("function", FUNCTIONS)
def test_role_allows_exactly_what_the_handler_calls(exercised, function):
    pipe, seen = exercised
    runtime = _runtime_actions()
    role = pipe.role_of(function)
    called = seen.get(function, set())
    assert called, f"{function} made no AWS call in the scenario"
    assert all(resource for _, resource in called), called
    missing, unused = compare(pipe, called, function, runtime[role])
    assert missing == [], f"{function} calls what its role {role} does not allow"
    assert unused == [], f"{role} allows what neither {function}'s code nor the Lambda service uses"
    # and the action-level view, runtime actions listed once:
    granted_actions = {a for a, _ in granted_pairs(pipe, role)}
    code_actions = {a for a, _ in called}
    assert code_actions <= granted_actions
    assert granted_actions - code_actions <= runtime[role]


def test_scenario_covered_every_path(exercised):
    _, seen = exercised
    ingestion = {a for a, _ in seen["DataIngestionFunction"]}
    aggregator = {a for a, _ in seen["DataAggregatorFunction"]}
    # ListObjectVersions (the newest version wins, docs/input-contract.md) is s3:ListBucketVersions
    assert {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucketVersions", "s3:PutObject"} <= ingestion
    assert "sqs:SendMessage" in aggregator  # the deferred, unfinished window
    assert not any(a.endswith(":Scan") for a in aggregator)


def test_runtime_actions_are_listed_once_for_every_role(exercised):
    from market_cfn.stack.policies import RUNTIME_ACTIONS

    pipe, _ = exercised
    assert set(RUNTIME_ACTIONS) == {pipe.role_of(f) for f in FUNCTIONS}


def test_the_comparison_catches_extra_and_missing_grants(exercised, monkeypatch):
    """The test above can fail: widen or narrow a role and it reports the difference."""
    import copy

    pipe, seen = exercised
    runtime = _runtime_actions()
    resources = copy.deepcopy(pipe.resources)
    statements = resources["DataProcessorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    table = {"Fn::GetAtt": ["MarketDataTable", "Arn"]}
    statements.append({"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [table]})  # unused
    for statement in statements:  # and take BatchWriteItem away
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != "dynamodb:BatchWriteItem"] or ["dynamodb:DescribeTable"]
    monkeypatch.setattr(pipe, "resources", resources)
    missing, unused = compare(
        pipe, seen["DataProcessorFunction"], "DataProcessorFunction", runtime["DataProcessorRole"]
    )
    table_arn = pipe.physical["MarketDataTable"]["Arn"]
    assert missing == [("dynamodb:BatchWriteItem", table_arn)]
    assert ("dynamodb:Query", table_arn) in unused
