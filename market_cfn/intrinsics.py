"""One walker for the template's intrinsic functions, shared by the tools that read the
rendered template as data (policy_export for parliament, simulate for moto).

Subclasses say what a `Ref` and an `Fn::GetAtt` stand for; the walker handles Fn::Sub
(with and without a variable map, `${Logical.Attr}` included), Fn::Join, Fn::If (the
true branch) and AWS::NoValue (dropped).
"""

from __future__ import annotations

import re
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class IntrinsicResolver:
    def ref(self, name: str) -> Any:
        raise NotImplementedError

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise NotImplementedError

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                return arg[0].join(str(self.resolve(v)) for v in arg[1])
            if key == "Fn::If":
                return self.resolve(arg[1])
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not None}

    __call__ = resolve

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {k: self.resolve(v) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            var = match.group(1)
            if var in local:
                return str(local[var])
            if "." in var:
                return str(self.get_att(*var.split(".", 1)))
            return str(self.ref(var))

        return _SUB_VARIABLE.sub(substitute, text)
