"""The outcomes every command reports, one exception per exit code (1 failed, 2 bad input, 3 refused)."""


class DeployError(Exception):
    """The deployment failed (exit code 1)."""


class OpsError(Exception):
    """The operation failed (exit code 1)."""


class UsageError(Exception):
    """Bad arguments or input (exit code 2)."""


class Refused(Exception):
    """Declined at the prompt, or blocked by the guard (exit code 3)."""
