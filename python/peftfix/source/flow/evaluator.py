"""What the call semantics need from the interpreter, as a protocol.

The interpreter walks statements and owns the states; :class:`~peftfix.source.flow.calls.CallSemantics` says
what library calls mean. They meet here, so the call semantics depend on this small surface only, never on the
interpreter module (which constructs them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, Protocol

import libcst as cst

from peftfix.source.context import FileContext
from peftfix.source.flow.model import Event, Kind, Obj, State


class Evaluator(Protocol):
    ctx: FileContext

    def eval(self, node: Optional[cst.CSTNode], state: State) -> frozenset:
        """The objects an expression may evaluate to (its events applied)."""

    def eval_quiet(self, node: cst.CSTNode, state: State) -> frozenset:
        """The objects an expression may evaluate to, without creating objects for unknown names."""

    def qualified(self, node: cst.CSTNode, state: State) -> Optional[str]:
        """The imported name an expression resolves to (``transformers.AutoModel``), or None."""

    def apply(self, objs: Iterable[Obj], event: Event, state: State) -> None:
        """Apply ``event`` to every object in ``objs`` along every path."""

    def emit(self, event: Event) -> None:
        """An event that belongs to no object."""

    def new_object(self, kind: Kind, state: State, first_event: Optional[Event] = None, **info: Any) -> Obj:
        """A new abstract object, tracked in ``state`` when it has histories."""

    def const(self, node: cst.CSTNode, value: Any, key: Optional[str]) -> frozenset:
        """The constant a literal (or a value known by a key) stands for."""

    def call_local_function(self, call: cst.Call, function: cst.FunctionDef, args: list, state: State) -> frozenset:
        """Apply a function of this file at ``call``: its summary's effects and what it returns."""
