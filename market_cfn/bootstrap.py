"""The bootstrap stack: the artifacts bucket that `bin/deploy` uploads code and templates to.

One bootstrap stack per account and region (default name `market-data-bootstrap`) serves
every environment: artifacts are content-addressed (`market-data/<sha256>.zip`,
`templates/<sha256>.json`), so environments that deploy the same code share one object.

The bucket is private (all four public-access blocks, ACLs disabled), encrypted at rest
(SSE-S3), reachable over TLS only (a bucket policy denies aws:SecureTransport=false) and
versioned, so an accidental delete or overwrite of an artifact that a stack still points
at can be undone. Lifecycle: a current artifact expires a year after upload (bin/deploy
re-uploads anything missing, because it checks with HeadObject before each deploy, and a
year is far longer than any rollback needs the previous code), noncurrent versions 30
days after that, unfinished multipart uploads after 1 day. The bucket survives the
stack's deletion (DeletionPolicy Retain): deleting a stack must not take the artifacts
of running stacks with it.
"""

from __future__ import annotations

import json

import awacs.s3
from awacs.aws import Bool, Condition, Deny, Principal, PolicyDocument, Statement
from troposphere import GetAtt, Join, Output, Ref, Template, s3

from market_cfn.suppressions import suppress

DEFAULT_STACK_NAME = "market-data-bootstrap"
BUCKET_OUTPUT = "ArtifactsBucketName"
ARTIFACT_EXPIRATION_DAYS = 365
NONCURRENT_EXPIRATION_DAYS = 30


def build_bootstrap_template() -> Template:
    t = Template(
        Description="market_cfn bootstrap: the private, encrypted artifacts bucket that bin/deploy "
        "uploads Lambda code and large templates to."
    )
    bucket = t.add_resource(
        s3.Bucket(
            "ArtifactsBucket",
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            BucketEncryption=s3.BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    s3.ServerSideEncryptionRule(
                        ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
                    )
                ]
            ),
            PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
                BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
            ),
            OwnershipControls=s3.OwnershipControls(Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
            VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
            LifecycleConfiguration=s3.LifecycleConfiguration(
                Rules=[
                    s3.LifecycleRule(
                        Id="ExpireOldArtifacts",
                        Status="Enabled",
                        ExpirationInDays=ARTIFACT_EXPIRATION_DAYS,
                        NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                            NoncurrentDays=NONCURRENT_EXPIRATION_DAYS
                        ),
                        AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(DaysAfterInitiation=1),
                    )
                ]
            ),
        )
    )
    suppress(
        bucket,
        checkov={
            "CKV_AWS_18": "Server access logs would need a second bucket of their own; the artifacts are "
            "content-addressed and written only by bin/deploy, and CloudTrail records the S3 data events."
        },
    )
    t.add_resource(
        s3.BucketPolicy(
            "ArtifactsBucketPolicy",
            Bucket=bucket.ref(),
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid="DenyInsecureTransport",
                        Effect=Deny,
                        Principal=Principal("*"),
                        Action=[awacs.s3.Action("*")],
                        Resource=[GetAtt(bucket, "Arn"), Join("", [GetAtt(bucket, "Arn"), "/*"])],
                        Condition=Condition(Bool("aws:SecureTransport", "false")),
                    )
                ],
            ),
        )
    )
    t.add_output(Output(BUCKET_OUTPUT, Description="Bucket bin/deploy uploads artifacts to.", Value=Ref(bucket)))
    return t


def render_bootstrap_json() -> str:
    """The bootstrap template as deterministic JSON (sorted keys), like render.render_json."""
    return json.dumps(build_bootstrap_template().to_dict(), indent=2, sort_keys=True) + "\n"
