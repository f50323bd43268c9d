"""API Gateway: POST /ingest, IAM-signed, proxied straight to DataIngestion."""

from __future__ import annotations

import hashlib
import json

from troposphere import GetAtt, Sub, Template, apigateway, awslambda

from market_cfn.stack.config import StackConfig
from market_cfn.stack.encryption import Encryption
from market_cfn.stack.functions import PipelineFunction
from market_cfn.stack.loggroups import add_log_group
from market_cfn.stack.parameters import Params
from market_cfn.stack.suppressions import suppress

# API Gateway validates a request body against the model keyed by its Content-Type, and
# against the `$default` model when no key matches; without one, a body sent as
# text/plain would skip validation (API Gateway developer guide, "Request validation":
# "...if the content type doesn't match any model, API Gateway uses $default").
DEFAULT_MODEL_KEY = "$default"

# API Gateway validates the body's shape only (a point, an array of points, or
# {"points": [...]}) and answers 400 before Lambda is invoked for anything else; the
# handler validates each record and reports per-record errors. JSON Schema draft 4 is
# the dialect API Gateway models use.
INGEST_BODY_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "IngestBody",
    "oneOf": [
        {"type": "object"},
        {"type": "array", "minItems": 1},
    ],
}

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "caller": "$context.identity.caller",
        "userArn": "$context.identity.userArn",
        "sourceIp": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationError": "$context.integrationErrorMessage",
        "xrayTraceId": "$context.xrayTraceId",
    },
    sort_keys=True,
    separators=(",", ":"),
)


def _definition_hash(*resources: object) -> str:
    """A short digest of the API definition.

    CloudFormation never redeploys an AWS::ApiGateway::Deployment whose properties did
    not change, so a changed method would not reach the stage. Naming the deployment after
    a digest of the method, resource, model and validator makes every definition change a
    new deployment (as SAM does), while an unchanged API keeps the same logical ID and
    renders the same bytes.
    """
    dicts = [r.to_dict() for r in resources]  # type: ignore[attr-defined]  # troposphere is untyped
    payload = json.dumps(dicts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def add_ingest_api(
    t: Template, cfg: StackConfig, params: Params, enc: Encryption, *, ingestion: PipelineFunction
) -> apigateway.RestApi:
    api = t.add_resource(
        apigateway.RestApi(
            "IngestApi",
            Name=params.name("MarketDataApi"),
            Description="POST /ingest: market-data points, SigV4-signed, into DataIngestion.",
            EndpointConfiguration=apigateway.EndpointConfiguration(Types=["REGIONAL"]),
        )
    )
    resource = t.add_resource(
        apigateway.Resource(
            "IngestResource", RestApiId=api.ref(), ParentId=GetAtt(api, "RootResourceId"), PathPart="ingest"
        )
    )
    model = t.add_resource(
        apigateway.Model(
            "IngestBodyModel",
            RestApiId=api.ref(),
            ContentType="application/json",
            Name="IngestBody",
            Schema=INGEST_BODY_SCHEMA,
        )
    )
    validator = t.add_resource(
        apigateway.RequestValidator(
            "IngestBodyValidator",
            RestApiId=api.ref(),
            Name="ValidateIngestBody",
            ValidateRequestBody=True,
            ValidateRequestParameters=False,
        )
    )
    method = t.add_resource(
        apigateway.Method(
            "IngestPostMethod",
            RestApiId=api.ref(),
            ResourceId=resource.ref(),
            HttpMethod="POST",
            AuthorizationType="AWS_IAM",
            RequestValidatorId=validator.ref(),
            RequestModels={"application/json": model.ref(), DEFAULT_MODEL_KEY: model.ref()},
            Integration=apigateway.Integration(
                Type="AWS_PROXY",
                IntegrationHttpMethod="POST",
                Uri=Sub(
                    "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Arn}/invocations",
                    Arn=GetAtt(ingestion.function, "Arn"),
                ),
            ),
        )
    )
    deployment = t.add_resource(
        apigateway.Deployment(
            f"IngestApiDeployment{_definition_hash(resource, model, validator, method)}",
            RestApiId=api.ref(),
            # The Ref to the method orders the deployment after it in CloudFormation and
            # in emulators that ignore DependsOn (moto creates resources in template order
            # but resolves references first).
            Description=Sub("POST /ingest (method ${Method})", Method=method.ref()),
        )
    )
    access_logs = add_log_group(
        t,
        cfg,
        enc,
        "IngestApiAccessLogGroup",
        name=Sub("/aws/apigateway/MarketDataApi-${Env}/access", Env=params.env_suffix.ref()),
    )
    method_setting = apigateway.MethodSetting(
        HttpMethod="*",
        ResourcePath="/*",
        ThrottlingRateLimit=params.api_rate_limit.ref(),
        ThrottlingBurstLimit=params.api_burst_limit.ref(),
        MetricsEnabled=True,
        DataTraceEnabled=False,
    )
    stage = apigateway.Stage(
        "IngestApiStage",
        RestApiId=api.ref(),
        DeploymentId=deployment.ref(),
        StageName=params.env_suffix.ref(),
        TracingEnabled=True,
        AccessLogSetting=apigateway.AccessLogSetting(
            DestinationArn=GetAtt(access_logs, "Arn"), Format=ACCESS_LOG_FORMAT
        ),
        MethodSettings=[method_setting],
    )
    if cfg.regulated:
        # Execution logs at ERROR (no request bodies: DataTraceEnabled stays off). API
        # Gateway writes them to API-Gateway-Execution-Logs_<api id>/<stage>; creating that
        # group first gives it the stack's key and retention instead of none.
        method_setting.LoggingLevel = "ERROR"
        execution_logs = add_log_group(
            t,
            cfg,
            enc,
            "IngestApiExecutionLogGroup",
            name=Sub("API-Gateway-Execution-Logs_${Api}/${Env}", Api=api.ref(), Env=params.env_suffix.ref()),
        )
        stage.DependsOn = [execution_logs.title]
    t.add_resource(stage)
    suppress(stage, checkov={"CKV_AWS_120": "No stage cache: every POST /ingest carries new data."})
    t.add_resource(
        awslambda.Permission(
            "DataIngestionApiPermission",
            FunctionName=ingestion.function.ref(),
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=Sub(
                "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*/POST/ingest",
                Api=api.ref(),
            ),
        )
    )
    return api


def ingest_url(params: Params, api_id: object) -> Sub:
    """The invoke URL of POST /ingest (region-neutral)."""
    return Sub(
        "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}/ingest",
        Api=api_id,
        Stage=params.env_suffix.ref(),
    )
