"""The deploy review, pure: plain data in (the change set's every signal, both templates), findings out.

Laid out as CDK's cloudformation-diff: the template diff (diff), every source of a resource's values
(sources) and their merge into one review (merge); the guard (guard, unprotect, harmless, schema);
the security diff (iam, policy, network); the digest of what was reviewed (digest); rendering (format),
which prints and never decides. Nothing here imports an AWS SDK: the boto3 calls live in
market_cfn/deploy/ beside this package (changeset, inputs, follow, flow).
"""
