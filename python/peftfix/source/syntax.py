"""Small questions about libcst nodes that rules, fixes and the data flow all ask."""

from __future__ import annotations

from typing import Optional

import libcst as cst


def iter_string_value(node: cst.CSTNode) -> Optional[str]:
    """The value of a plain string literal (no f-string), else None."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def keyword_arg(call: cst.Call, name: str) -> Optional[cst.Arg]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def positional_args(call: cst.Call) -> list[cst.Arg]:
    return [arg for arg in call.args if arg.keyword is None and not arg.star]


def argument(call: cst.Call, position: int, keyword: str) -> Optional[cst.Arg]:
    """The argument passed at ``position`` or as ``keyword``."""
    found = keyword_arg(call, keyword)
    if found is not None:
        return found
    positional = positional_args(call)
    return positional[position] if position < len(positional) else None


def literal_bool(node: Optional[cst.CSTNode]) -> Optional[bool]:
    if isinstance(node, cst.Name) and node.value in ("True", "False"):
        return node.value == "True"
    return None


def dotted_name(node: cst.CSTNode) -> Optional[str]:
    """``x`` or ``self.model.inner`` as a string; None for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base is not None else None
    return None
