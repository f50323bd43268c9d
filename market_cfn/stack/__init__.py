"""The CloudFormation template: config, parameters, one builder per concern, policies, render."""
