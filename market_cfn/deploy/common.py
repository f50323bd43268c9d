"""What every deploy step shares: the three outcomes (exit codes 1, 2, 3), injectable waits, the console."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import ClientError

# --- Outcomes -------------------------------------------------------------------------


class DeployError(Exception):
    """The deployment failed (exit code 1)."""


class UsageError(Exception):
    """Bad arguments or input (exit code 2)."""


class Refused(Exception):
    """Declined at the prompt, or blocked by the guard (exit code 3)."""


NO_CHANGES_REASONS = ("didn't contain changes", "No updates are to be performed")
CANCELLED_REASONS = ("Resource creation cancelled", "Resource update cancelled")
SUCCESS_STATUS = {"CREATE": "CREATE_COMPLETE", "UPDATE": "UPDATE_COMPLETE", "IMPORT": "IMPORT_COMPLETE"}
UNRECOVERABLE_STATUSES = {"UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_FAILED"}
TEMPLATE_BODY_LIMIT = 51_200  # bytes; larger templates must be passed as TemplateURL
MASK = "****"


# --- Where the deploy runs --------------------------------------------------------------


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


# --- Time and terminal ----------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Waits:
    """Everything a poll loop needs, injectable so tests never sleep."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = _utcnow
    poll_seconds: float = 5.0
    change_set_timeout_seconds: float = 600.0
    stack_timeout_seconds: float = 3600.0
    # Stack events are stamped by AWS; the marker is taken from this machine's clock.
    clock_skew_seconds: float = 120.0


@dataclass
class Console:
    """Where the human-readable output goes and how to ask a yes/no question."""

    out: TextIO
    interactive: bool
    ask: Callable[[str], str] = input
    color: bool = False

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def confirm(self, question: str, *, assume_yes: bool) -> bool:
        if assume_yes:
            self.say(f"{question} y (--yes)")
            return True
        if not self.interactive:
            raise Refused(f"{question} needs an answer, but there is no terminal to ask on; pass --yes to confirm")
        try:
            answer = self.ask(f"{question} [y/N] ")
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")


def table(rows: list[list[str]], *, indent: str = "  ") -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _short(value: Any, limit: int = 120) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _error_message(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Message", str(exc))


def not_implemented(exc: Exception) -> bool:
    """Whether an endpoint said it does not implement the call: moto answers an action it lacks with an
    HTTP 500 HTML page (botocore cannot parse it), others with NotImplemented / HTTP 501."""
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ResponseParserError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return _error_code(exc) in ("NotImplemented", "NotImplementedException", "InternalFailure") or status in (
            500,
            501,
        )
    return False
