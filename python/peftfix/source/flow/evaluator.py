"""What the call semantics need from the interpreter, as a protocol.

The interpreter walks statements and owns the states; :class:`~peftfix.source.flow.calls.CallSemantics` says
what library calls mean. They meet here, so the call semantics depend on this small surface only, never on the
interpreter module (which constructs them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional, Protocol

from peftfix.source.flow.model import Event, Kind, Obj, State

if TYPE_CHECKING:
    from peftfix.source.flow.calls import CallArguments
    from peftfix.source.module import SourceModule


class Evaluator(Protocol):
    @property
    def module(self) -> SourceModule:
        """The module whose code is being interpreted."""

    def eval(self, node: Optional[ast.AST], state: State) -> frozenset:
        """The objects an expression may evaluate to (its events applied)."""

    def qualified(self, node: ast.AST, state: State) -> Optional[str]:
        """The library name an expression resolves to (``transformers.AutoModel``), or None."""

    def attribute_values(self, receiver: frozenset, attribute: str) -> frozenset:
        """What ``receiver.attribute`` is when the receiver is a module or class of the program."""

    def apply(self, objs: Iterable[Obj], event: Event, state: State) -> None:
        """Apply ``event`` to every object in ``objs`` along every path."""

    def emit(self, event: Event) -> None:
        """An event that belongs to no object."""

    def new_object(self, kind: Kind, state: State, first_event: Optional[Event] = None, **info: Any) -> Obj:
        """A new abstract object, tracked in ``state`` when it has histories."""

    def const(self, node: ast.AST, value: Any, key: Optional[str]) -> frozenset:
        """The constant a literal (or a value known by a key) stands for."""

    def call_function(
        self, call: ast.Call, function: Obj, receiver: frozenset, arguments: CallArguments, state: State
    ) -> frozenset:
        """Apply a function of the program at ``call``: its summary's effects and what it returns."""

    def construct(self, call: ast.Call, cls: Obj, arguments: CallArguments, state: State) -> frozenset:
        """``Cls(...)`` for a class of the program: an instance, set up by its ``__init__``."""

    def assigned_names(self, call: ast.AST) -> frozenset[str]:
        """The names the statement being run assigns ``call``'s result to, when ``call`` is its whole value."""

    def end_path(self, state: State) -> None:
        """The path through ``state`` ends here (the program exits)."""
