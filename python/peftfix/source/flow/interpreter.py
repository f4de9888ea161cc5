"""Walks each scope of a module in statement order and feeds the rules the events it sees.

The module body and every function body are interpreted once. Branches run on copies of the state and are
merged afterwards; a path that returns, raises, breaks or continues leaves the merge. Loops run their body
twice (enough for a second iteration to see the first one's effects). A call to a function of this file
applies that function's *summary*: the events it applies to its parameters are replayed on the caller's
objects (so a rule sees them with the caller's history), and what it returns flows back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional

import libcst as cst

from peftfix.source.context import FileContext, child_blocks
from peftfix.source.flow.calls import CallSemantics
from peftfix.source.flow.model import (
    EMPTY,
    HISTORY_KINDS,
    MODEL_VIEW_KINDS,
    Ev,
    Event,
    Kind,
    Obj,
    State,
    cap,
)
from peftfix.source.flow.names import import_bindings, is_tracked, module_level_imports
from peftfix.source.syntax import dotted_name

EventHook = Callable[[tuple, Event], None]
FinalHook = Callable[[tuple], None]


@dataclass
class Frame:
    """What a scope collects while it runs: its exits and the states that leave loops early."""

    exits: list = field(default_factory=list)  # (returned value, state)
    breaks: list = field(default_factory=list)  # one list of states per enclosing loop
    continues: list = field(default_factory=list)


@dataclass
class Summary:
    params: list  # (name, Obj) in declaration order
    exits: list  # (returned value, state)
    positional_names: list  # names that can be passed positionally (self excluded for methods is not done)


class Interpreter:
    def __init__(self, ctx: FileContext, on_event: EventHook, on_final: FinalHook):
        self.ctx = ctx
        self._on_event = on_event
        self._on_final = on_final
        self.calls = CallSemantics(self)
        self._summaries: dict[cst.FunctionDef, Summary] = {}
        self._in_progress: set = set()
        self._clones: dict = {}
        self._consts: dict = {}
        self._last_values: dict = {}
        self._module_imports = module_level_imports(ctx.module)
        self._in_function = False

    # ------------------------------------------------------------------------------------------ entry point

    def run(self) -> None:
        frame = Frame()
        final = self.exec_block(self.ctx.module.body, State(), frame)
        self._finish(State.merge([final] + [state for _, state in frame.exits]))
        for node in _definitions(self.ctx.module, cst.ClassDef):
            self._analyze_class(node)
        for function in _definitions(self.ctx.module, cst.FunctionDef):
            self.summary(function)

    def _analyze_class(self, node: cst.ClassDef) -> None:
        """Methods start from what ``__init__`` left on ``self`` (``self.model = ...`` there, trained in ``run``)."""
        methods = [s for s in node.body.body if isinstance(s, cst.FunctionDef) and _first_param(s)]
        init = next((m for m in methods if m.name.value == "__init__"), None)
        if init is None or init in self._summaries:
            return
        summary = self.summary(init)
        receiver = _first_param(init)  # never None: `methods` keeps only functions with a first parameter
        if summary is None or receiver is None:
            return
        prefix = receiver + "."
        after_init = State.merge([state for _, state in summary.exits])
        if after_init is None:
            return
        attributes = {k[len(prefix) :]: v for k, v in after_init.env.items() if k.startswith(prefix)}
        for method in methods:
            if method is not init:
                self.summary(method, (attributes, after_init.heap))

    def _finish(self, state: Optional[State]) -> None:
        if state is None:
            return
        for histories in state.heap.values():
            for history in histories:
                self._on_final(history)

    # ------------------------------------------------------------------------------------------- events

    def apply(self, objs: Iterable[Obj], event: Event, state: State) -> None:
        """Apply ``event`` to every object in ``objs`` along every path; view objects pass it to their models."""
        for obj in objs:
            if obj.kind in HISTORY_KINDS:
                self._extend(obj, event, state)

    def _extend(self, obj: Obj, event: Event, state: State) -> None:
        extended = set()
        for history in state.heap.get(obj, frozenset()):
            self._on_event(history, event)
            extended.add(history + (event,))
        state.heap[obj] = cap(frozenset(extended))

    def emit(self, event: Event) -> None:
        """An event that belongs to no object (a config was built)."""
        self._on_event((), event)

    def new_object(self, kind: Kind, state: State, first_event: Optional[Event] = None, **info) -> Obj:
        obj = Obj(kind, **info)
        if kind in HISTORY_KINDS:
            history = (first_event,) if first_event is not None else ()
            if first_event is not None:
                self._on_event((), first_event)
            state.heap[obj] = frozenset([history])
        return obj

    def const(self, node: cst.CSTNode, value, key: Optional[str]) -> frozenset:
        obj = self._consts.get(node)
        if obj is None:
            obj = self._consts[node] = Obj(Kind.CONST, value=value, key=key, node=node)
        return frozenset([obj])

    # --------------------------------------------------------------------------------------- statements

    def exec_block(self, statements: Sequence[cst.CSTNode], state: Optional[State], frame: Frame) -> Optional[State]:
        for statement in statements:
            if state is None:
                return None
            state = self.exec_statement(statement, state, frame)
        return state

    def exec_statement(self, node: cst.CSTNode, state: State, frame: Frame) -> Optional[State]:
        if isinstance(node, cst.BaseSmallStatement):  # the body of ``if x: y`` holds small statements
            return self.exec_small(node, state, frame)
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                after = self.exec_small(small, state, frame)
                if after is None:
                    return None
                state = after
            return state
        if isinstance(node, cst.If):
            self.eval(node.test, state)
            taken = self.exec_block(node.body.body, state.copy(), frame)
            if node.orelse is None:
                other: Optional[State] = state
            elif isinstance(node.orelse, cst.If):
                other = self.exec_statement(node.orelse, state.copy(), frame)
            else:
                other = self.exec_block(node.orelse.body.body, state.copy(), frame)
            return State.merge([taken, other])
        if isinstance(node, (cst.For, cst.While)):
            return self.exec_loop(node, state, frame)
        if isinstance(node, (cst.Try, cst.TryStar)):
            return self.exec_try(node, state, frame)
        if isinstance(node, cst.With):
            for item in node.items:
                value = self.eval(item.item, state)
                if item.asname is not None:
                    self.bind(item.asname.name, value, state)
            return self.exec_block(node.body.body, state, frame)
        if isinstance(node, cst.FunctionDef):
            state.bind(node.name.value, frozenset([Obj(Kind.FUNCTION, node=node)]))
            return state
        if isinstance(node, cst.ClassDef):
            state.forget(node.name.value)
            return state
        if isinstance(node, cst.Match):
            self.eval(node.subject, state)
            outcomes: list[Optional[State]] = [state]
            for case in node.cases:
                outcomes.append(self.exec_block(case.body.body, state.copy(), frame))
            return State.merge(outcomes)
        return state

    def exec_loop(self, node, state: State, frame: Frame) -> Optional[State]:
        frame.breaks.append([])
        frame.continues.append([])
        if isinstance(node, cst.For):
            iterated = self.eval(node.iter, state)
        else:
            self.eval(node.test, state)
        entry = state
        # A ``for`` loop is taken to run at least once (it iterates over a model's parameters, a dataset...);
        # a ``while`` loop may not run at all.
        outcomes = [] if isinstance(node, cst.For) else [state]
        for _ in range(2):
            body_state = entry.copy()
            if isinstance(node, cst.For):
                # Iterating over model.parameters() yields parameters of that model (for requires_grad).
                self.bind(node.target, self._views(iterated), body_state)
            after = self.exec_block(node.body.body, body_state, frame)
            after = State.merge([after] + frame.continues[-1])
            frame.continues[-1] = []
            if after is None:
                break
            outcomes.append(after)
            entry = _merge_live(entry, after)
        frame.continues.pop()
        breaks = frame.breaks.pop()
        result = State.merge(outcomes)
        if node.orelse is not None and result is not None:
            result = self.exec_block(node.orelse.body.body, result, frame)
        return State.merge([result] + breaks)

    def exec_try(self, node, state: State, frame: Frame) -> Optional[State]:
        body = self.exec_block(node.body.body, state.copy(), frame)
        # An exception may leave the body anywhere: handlers start from what was true before or after it.
        handler_entry = _merge_live(state, body)
        outcomes = []
        for handler in node.handlers:
            handler_state = handler_entry.copy()
            if handler.name is not None:
                self.bind(handler.name.name, EMPTY, handler_state)
            outcomes.append(self.exec_block(handler.body.body, handler_state, frame))
        if node.orelse is not None and body is not None:
            body = self.exec_block(node.orelse.body.body, body, frame)
        result = State.merge([body] + outcomes)
        if node.finalbody is not None:
            final = self.exec_block(node.finalbody.body.body, (result or handler_entry).copy(), frame)
            result = final if result is not None else None
        return result

    def exec_small(self, node: cst.CSTNode, state: State, frame: Frame) -> Optional[State]:
        if isinstance(node, cst.Assign):
            value = self.eval(node.value, state)
            for target in node.targets:
                self.bind(target.target, value, state)
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                self.bind(node.target, self.eval(node.value, state), state)
        elif isinstance(node, cst.AugAssign):
            value = self.eval(node.value, state)
            name = dotted_name(node.target)
            if name is not None:
                state.bind(name, state.env.get(name, EMPTY) | self._views(value))
        elif isinstance(node, cst.Expr):
            self.eval(node.value, state)
        elif isinstance(node, cst.Return):
            value = self.eval(node.value, state) if node.value is not None else EMPTY
            frame.exits.append((value, state))
            return None
        elif isinstance(node, cst.Raise):
            if node.exc is not None:
                self.eval(node.exc, state)
            return None
        elif isinstance(node, cst.Break):
            if frame.breaks:
                frame.breaks[-1].append(state)
            return None
        elif isinstance(node, cst.Continue):
            if frame.continues:
                frame.continues[-1].append(state)
            return None
        elif isinstance(node, cst.Del):
            self._forget_target(node.target, state)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            for name, qualified in import_bindings(node):
                if qualified is None:
                    state.forget(name)
                else:
                    state.bind(name, frozenset([self._module_ref(qualified)]))
        elif isinstance(node, cst.Assert):
            self.eval(node.test, state)
        return state

    def bind(self, target: cst.CSTNode, value: frozenset, state: State) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            elements = [element.value for element in target.elements]
            sequences = [obj for obj in value if obj.kind is Kind.SEQUENCE and len(obj.info["items"]) == len(elements)]
            for index, element in enumerate(elements):
                if isinstance(element, cst.StarredElement):
                    self.bind(element.value, EMPTY, state)
                    continue
                item = EMPTY
                for sequence in sequences:
                    item = item | sequence.info["items"][index]
                # Unpacking a view (``for name, p in model.named_parameters()``) keeps the view.
                self.bind(element, item | self._views(value), state)
            return
        if isinstance(target, cst.Subscript):
            self.eval(target.value, state)
            return
        name = dotted_name(target)
        if name is not None:
            state.bind(name, value)
            if isinstance(target, cst.Attribute) and target.attr.value == "requires_grad":
                self.calls.requires_grad_assigned(target, state)

    def _forget_target(self, target: cst.CSTNode, state: State) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._forget_target(element.value, state)
            return
        name = dotted_name(target)
        if name is not None and name in state.env:
            state.forget(name)

    @staticmethod
    def _views(value: frozenset) -> frozenset:
        return frozenset(obj for obj in value if obj.kind in MODEL_VIEW_KINDS)

    # -------------------------------------------------------------------------------------- expressions

    def eval(self, node: Optional[cst.CSTNode], state: State) -> frozenset:
        if node is None:
            return EMPTY
        value = self._eval(node, state)
        self._last_values[node] = value
        return value

    def eval_quiet(self, node: cst.CSTNode, state: State) -> frozenset:
        """The value ``node`` had when it was last evaluated, without running its calls a second time."""
        if node in self._last_values:
            return self._last_values[node]
        return self.eval(node, state)

    def qualified(self, node: cst.CSTNode, state: State) -> Optional[str]:
        """The import ``node`` (a name or attribute chain) refers to on this path, in a tracked package."""
        qualified = self._qualified(node, state)
        return qualified if is_tracked(qualified) else None

    def _qualified(self, node: cst.CSTNode, state: State) -> Optional[str]:
        if isinstance(node, cst.Attribute):
            base = self._qualified(node.value, state)
            return f"{base}.{node.attr.value}" if base is not None else None
        if not isinstance(node, cst.Name):
            return None
        value = state.env.get(node.value)
        if value is None:
            return self._module_imports.get(node.value) if self._in_function else None
        names = {obj.info["qualified"] for obj in value if obj.kind is Kind.MODULE}
        # Every binding that may reach this use must be the same import.
        if len(names) == 1 and all(obj.kind is Kind.MODULE for obj in value):
            return next(iter(names))
        return None

    def _module_ref(self, qualified: str) -> Obj:
        obj = self._consts.get(qualified)
        if obj is None:
            obj = self._consts[qualified] = Obj(Kind.MODULE, qualified=qualified)
        return obj

    def _eval(self, node: cst.CSTNode, state: State) -> frozenset:
        if isinstance(node, cst.Name):
            return state.env.get(node.value, EMPTY)
        if isinstance(node, cst.Attribute):
            name = dotted_name(node)
            if name is not None and name in state.env:
                return state.env[name]
            base = self.eval(node.value, state)
            return frozenset(obj for obj in base if obj.kind is Kind.OUTPUT)
        if isinstance(node, cst.Call):
            return self.calls.evaluate(node, state)
        if isinstance(node, cst.Subscript):
            base = self.eval(node.value, state)
            for element in node.slice:
                if isinstance(element.slice, cst.Index):
                    self.eval(element.slice.value, state)
            return self.calls.subscript(node, base, state)
        if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation)):
            left, right = self.eval(node.left, state), self.eval(node.right, state)
            if isinstance(node, cst.BooleanOperation):
                return left | right
            return self._views(left | right)
        if isinstance(node, cst.UnaryOperation):
            return self._views(self.eval(node.expression, state))
        if isinstance(node, cst.Comparison):
            self.eval(node.left, state)
            for target in node.comparisons:
                self.eval(target.comparator, state)
            return EMPTY
        if isinstance(node, cst.IfExp):
            self.eval(node.test, state)
            return self.eval(node.body, state) | self.eval(node.orelse, state)
        if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
            items = tuple(self.eval(element.value, state) for element in node.elements)
            return frozenset([Obj(Kind.SEQUENCE, items=items, node=node)])
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            text = node.evaluated_value
            return self.const(node, text, f"str:{text!r}")
        if isinstance(node, cst.Integer):
            return self.const(node, node.evaluated_value, None)
        if isinstance(node, cst.NamedExpr):
            value = self.eval(node.value, state)
            self.bind(node.target, value, state)
            return value
        if isinstance(node, cst.Await):
            return self.eval(node.expression, state)
        if isinstance(node, cst.Dict):
            for entry in node.elements:
                if isinstance(entry, cst.DictElement):
                    self.eval(entry.key, state)
                self.eval(entry.value, state)
            return EMPTY
        if isinstance(node, cst.FormattedString):
            for part in node.parts:
                if isinstance(part, cst.FormattedStringExpression):
                    self.eval(part.expression, state)
            return EMPTY
        if isinstance(node, (cst.StarredElement, cst.Element)):
            return self.eval(node.value, state)
        return EMPTY

    # ------------------------------------------------------------------------------------------ summaries

    def summary(self, function: cst.FunctionDef, attributes: Optional[tuple] = None) -> Optional[Summary]:
        """Interpret ``function`` once with opaque parameters; None while it is being interpreted (recursion).

        ``attributes`` (a method's view of ``self`` after ``__init__``) is ``(attribute -> value, heap)``.
        """
        if function in self._summaries:
            return self._summaries[function]
        if function in self._in_progress:
            return None
        self._in_progress.add(function)
        state = State()
        params = []
        all_params = list(function.params.posonly_params) + list(function.params.params)
        all_params += list(function.params.kwonly_params)
        start = Event(Ev.PARAM_START, function)
        for param in all_params:
            obj = Obj(Kind.PARAM, name=param.name.value)
            state.heap[obj] = frozenset([(start,)])
            state.bind(param.name.value, frozenset([obj]))
            params.append((param.name.value, obj))
        if attributes is not None and params:
            values, heap = attributes
            for attribute, value in values.items():
                state.env[f"{params[0][0]}.{attribute}"] = value
            for obj, histories in heap.items():
                state.heap.setdefault(obj, histories)
        frame = Frame()
        outer, self._in_function = self._in_function, True
        final = self.exec_block(_body_statements(function), state, frame)
        self._in_function = outer
        exits = list(frame.exits)
        if final is not None:
            exits.append((EMPTY, final))
        positional = [p.name.value for p in list(function.params.posonly_params) + list(function.params.params)]
        summary = Summary(params=params, exits=exits, positional_names=positional)
        self._in_progress.discard(function)
        self._summaries[function] = summary
        self._finish(State.merge([state for _, state in exits]))
        return summary

    def call_local_function(self, call: cst.Call, function: cst.FunctionDef, args: list, state: State) -> frozenset:
        """Apply ``function``'s summary at ``call``; ``args`` are the evaluated arguments in order."""
        summary = self.summary(function)
        if summary is None:
            return EMPTY
        bound = _parameter_arguments(call, summary)
        binding = {name: args[index] for name, index in bound.items()}
        self._materialize_arguments(call, summary, bound, binding, state)
        results = []
        returned = EMPTY
        for value, exit_state in summary.exits:
            caller = state.copy()
            mapping = {obj: binding.get(name, EMPTY) for name, obj in summary.params}
            for param, actual in mapping.items():
                suffixes = [history[1:] for history in exit_state.heap.get(param, frozenset())]
                for obj in actual:
                    self._replay(obj, suffixes, caller)
            returned |= self._import_value(value, call, exit_state, caller, mapping)
            results.append(caller)
        merged = State.merge(results)
        if merged is not None:
            state.env, state.heap = merged.env, merged.heap
        return returned

    def _materialize_arguments(
        self, call: cst.Call, summary: Summary, bound: dict[str, int], binding: dict, state: State
    ) -> None:
        """A plain variable passed where the callee treats it as a model holds one, even if unseen here."""
        used_as_model = {
            name
            for name, param in summary.params
            for _, exit_state in summary.exits
            for history in exit_state.heap.get(param, ())
            if any(event.kind not in _DEFERRED for event in history[1:])
        }
        for name in used_as_model:
            if not binding.get(name) and name in bound:
                binding[name] = self.calls.materialize(call.args[bound[name]].value, state)

    def _replay(self, obj: Obj, suffixes: list, state: State) -> None:
        """Replay a callee's events on a caller's object (translating parameter-dependent calls)."""
        if not any(suffixes):
            return
        if obj.kind in MODEL_VIEW_KINDS:
            translated = [[_translate(event, obj.kind) for event in suffix] for suffix in suffixes]
            translated = [[event for event in suffix if event is not None] for suffix in translated]
            for model in obj.models:
                self._replay(model, translated, state)
            return
        if obj.kind not in HISTORY_KINDS:
            return
        extended = set()
        for history in state.heap.get(obj, frozenset()):
            for suffix in suffixes:
                current = history
                for event in suffix:
                    self._on_event(current, event)
                    current = current + (event,)
                extended.add(current)
        state.heap[obj] = cap(frozenset(extended))

    def _import_value(self, value: frozenset, call: cst.Call, exit_state: State, caller: State, mapping: dict):
        """Bring what a callee returns into the caller: its parameters become the caller's arguments, objects it
        created become copies (one per call site) carrying their histories."""
        imported = EMPTY
        for obj in value:
            if obj in mapping:
                imported |= mapping[obj]
                continue
            key = (call, obj)
            clone = self._clones.get(key)
            if clone is None:
                info = dict(obj.info)
                clone = self._clones[key] = Obj(obj.kind, **info)
                if "models" in info:
                    clone.info["models"] = self._import_value(info["models"], call, exit_state, caller, mapping)
                if obj.kind is Kind.SEQUENCE:
                    clone.info["items"] = tuple(
                        self._import_value(item, call, exit_state, caller, mapping) for item in info["items"]
                    )
            if obj.kind in HISTORY_KINDS:
                caller.heap[clone] = exit_state.heap.get(obj, frozenset([()]))
            imported |= frozenset([clone])
        return imported


def _translate(event: Event, view_kind: Kind) -> Optional[Event]:
    """A parameter's ``.train()``/``.step()``/``.backward()`` trains only when the caller passed a trainer,
    an optimizer or a loss; on a model ``.train()`` merely switches mode."""
    wanted = {Kind.TRAINER: Ev.CALL_TRAIN, Kind.OPTIMIZER: Ev.CALL_STEP, Kind.OUTPUT: Ev.CALL_BACKWARD}.get(view_kind)
    if event.kind is wanted:
        return Event(Ev.TRAIN, event.node, {"via": event.get("via")})
    return None


_DEFERRED = (Ev.CALL_TRAIN, Ev.CALL_STEP, Ev.CALL_BACKWARD)


def _parameter_arguments(call: cst.Call, summary: Summary) -> dict[str, int]:
    """Which argument of ``call`` (its index) each parameter of the callee receives. Binding stops at the first
    ``*args``/``**kwargs``: from there on, positions are unknown."""
    bound: dict[str, int] = {}
    position = 0
    for index, arg in enumerate(call.args):
        if arg.star:
            break
        if arg.keyword is not None:
            bound[arg.keyword.value] = index
            continue
        if position < len(summary.positional_names):
            bound[summary.positional_names[position]] = index
        position += 1
    return bound


def _body_statements(function: cst.FunctionDef) -> Sequence[cst.CSTNode]:
    return function.body.body


def _merge_live(live: State, *others: Optional[State]) -> State:
    """``State.merge([live, *others])``: with ``live`` among them the merge is always a state."""
    merged = State.merge([live, *others])
    assert merged is not None
    return merged


def _first_param(function: cst.FunctionDef) -> Optional[str]:
    params = list(function.params.posonly_params) + list(function.params.params)
    return params[0].name.value if params else None


def _definitions(module: cst.Module, kind: type) -> list:
    """Every function or class definition, however nested, found by walking statements only (cheap)."""
    found = []
    pending = list(module.body)
    while pending:
        statement = pending.pop(0)
        if isinstance(statement, kind):
            found.append(statement)
        for block in child_blocks(statement):
            pending.extend(block.body)
    return found
