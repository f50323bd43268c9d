"""Remembered deploy settings: `deploy.toml`, one section per environment, so `bin/deploy --env prod`
deploys prod the same way every time.

```toml
[env.prod]
stack_name = "market-data-prod"
region = "eu-west-1"
profile = "prod-deployer"
retain_data = true
render_profile = "regulated"
rollback_alarms = true
rollback_monitoring_minutes = 15
stateful_types = ["AWS::Custom::LedgerStore"]

[env.prod.parameters]
AlarmActionArn = "arn:aws:sns:eu-west-1:123456789012:market-data-alarms"

[env.prod.tags]
team = "markets"
```

The file is TOML (read with the standard library's tomllib, so it needs no dependency and
keeps comments a reviewer can read). Every key is checked: an unknown key, a value of the
wrong type or an environment name the template would reject is an error naming the file
and the key, never ignored. The command line wins over the file, key by key (a
`--parameter` replaces the file's value for that parameter only).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from market_cfn.base.errors import UsageError
from market_cfn.stack.config import ENVIRONMENT_SUFFIX_PATTERN

DEFAULT_SETTINGS_FILE = Path("deploy.toml")

# key -> (python type, what it means); the types are those tomllib returns.
_SCALARS: dict[str, tuple[type, str]] = {
    "stack_name": (str, "CloudFormation stack name"),
    "region": (str, "AWS region"),
    "profile": (str, "AWS named profile"),
    "endpoint_url": (str, "endpoint of a local AWS emulation"),
    "bootstrap_stack_name": (str, "stack that provides the artifacts bucket"),
    "retain_data": (bool, "DeletionPolicy/UpdateReplacePolicy Retain on the data stores"),
    "render_profile": (str, "template render profile (market_cfn render --render-profile)"),
    "rollback_alarms": (bool, "pass the stack's alarms as rollback triggers"),
    "rollback_monitoring_minutes": (int, "monitoring time after the update, 0-180"),
    "drift_check": (bool, "detect drift of the stateful resources before executing"),
}
_TABLES = ("parameters", "tags")
_LISTS = ("stateful_types",)
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")  # CreateChangeSet's StackName rule
_RESOURCE_TYPE = re.compile(r"^[A-Za-z0-9]+::[A-Za-z0-9]+::[A-Za-z0-9]+(::MODULE)?$")


@dataclass(frozen=True)
class EnvSettings:
    """One environment's section; None/empty means "not set in the file"."""

    env: str
    source: str = ""  # "deploy.toml [env.prod]", for messages
    stack_name: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    bootstrap_stack_name: str | None = None
    retain_data: bool | None = None
    render_profile: str | None = None
    rollback_alarms: bool | None = None
    rollback_monitoring_minutes: int | None = None
    drift_check: bool | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    stateful_types: tuple[str, ...] = ()


def load_settings(path: Path, env: str, *, required: bool) -> EnvSettings:
    """The section [env.<env>] of `path`.

    required: the user named the file (--config): a missing file or section is an error.
    Otherwise a missing file or section means "no remembered settings".
    """
    if not path.exists():
        if required:
            raise UsageError(f"settings file {path} does not exist")
        return EnvSettings(env)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read: {exc.strerror}") from exc
    unknown = set(document) - {"env"}
    if unknown:
        raise UsageError(f"{path}: unknown top-level key {sorted(unknown)[0]!r} (only [env.<name>] sections are read)")
    envs = document.get("env", {})
    if not isinstance(envs, dict):
        raise UsageError(f"{path}: 'env' must be a table of [env.<name>] sections")
    for name in envs:  # every section is checked, not only the one deployed now
        if not re.match(ENVIRONMENT_SUFFIX_PATTERN, name):
            raise UsageError(
                f"{path}: [env.{name}]: environment names are 1-10 lower-case letters and digits, "
                "starting with a letter"
            )
        _parse_section(path, name, envs[name])
    if env not in envs:
        if required:
            raise UsageError(f"{path} has no [env.{env}] section (it has: {', '.join(sorted(envs)) or 'none'})")
        return EnvSettings(env)
    return _parse_section(path, env, envs[env])


def _parse_section(path: Path, env: str, raw: Any) -> EnvSettings:
    where = f"{path} [env.{env}]"
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be a table")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SCALARS:
            kind, _ = _SCALARS[key]
            # bool is an int in Python: check it exactly so `retain_data = 1` is refused
            if type(value) is not kind:
                raise UsageError(f"{where}: {key} must be a {kind.__name__}, not {type(value).__name__}")
            if isinstance(value, str) and not value.strip():
                raise UsageError(f"{where}: {key} must not be empty")
            values[key] = value
        elif key in _TABLES:
            if not isinstance(value, dict):
                raise UsageError(f'{where}: {key} must be a table of KEY = "VALUE"')
            for k, v in value.items():
                if not isinstance(v, str):
                    raise UsageError(f"{where}: {key}.{k} must be a string (write numbers in quotes)")
            values[key] = dict(value)
        elif key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(f"{where}: {key} must be a list of strings")
            for v in value:
                if not _RESOURCE_TYPE.match(v):
                    raise UsageError(f"{where}: {key}: {v!r} is not a resource type (Service::Provider::Type)")
            values[key] = tuple(value)
        else:
            known = ", ".join(sorted([*_SCALARS, *_TABLES, *_LISTS]))
            raise UsageError(f"{where}: unknown key {key!r} (known: {known})")
    if "stack_name" in values and not _STACK_NAME.match(values["stack_name"]):
        raise UsageError(f"{where}: stack_name {values['stack_name']!r} is not a valid CloudFormation stack name")
    minutes = values.get("rollback_monitoring_minutes")
    if minutes is not None and not 0 <= minutes <= 180:
        raise UsageError(f"{where}: rollback_monitoring_minutes must be 0-180 (RollbackConfiguration limit)")
    return EnvSettings(env, where, **values)
