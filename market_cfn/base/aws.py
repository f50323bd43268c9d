"""AWS helpers every room shares: where a run points (region, profile, endpoint) and what an error says."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class Where:
    """The AWS options a run was given, repeated in every command it prints for the user to run."""

    region: str = ""
    profile: str = ""
    endpoint_url: str = ""

    @property
    def emulator(self) -> bool:
        """A local emulation (--endpoint-url): APIs it lacks degrade as documented, never silently."""
        return bool(self.endpoint_url)

    def flags(self) -> str:
        parts = []
        for option, value in (
            ("--endpoint-url", self.endpoint_url),
            ("--region", self.region),
            ("--profile", self.profile),
        ):
            if value:
                parts += [option, shlex.quote(value)]
        return " ".join(parts)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def error_message(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Message", str(exc))


def not_implemented(exc: Exception) -> bool:
    """Whether an endpoint said it does not implement the call: moto answers an action it lacks with an
    HTTP 500 HTML page (botocore cannot parse it), others with NotImplemented / HTTP 501."""
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ResponseParserError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error_code(exc) in ("NotImplemented", "NotImplementedException", "InternalFailure") or status in (
            500,
            501,
        )
    return False
