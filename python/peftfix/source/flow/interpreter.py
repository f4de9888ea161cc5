"""Walks the program in statement order and feeds the rules the events it sees — across functions, methods and
the project's own modules.

- **Paths.** Each statement runs on every path that reaches it; a branch gives each side its own path and the
  paths are not merged at the join (up to ``MAX_PATHS``), so facts established together stay together.
  ``isinstance``/``hasattr``/``is None`` tests on a variable narrow each side (``guards``); a call that ends the
  program (``sys.exit``) ends its path.
- **Exceptions.** A handler starts from the state before each statement of its ``try`` body that may raise: the
  effect of a call that raised never reaches the handler.
- **Functions.** Every function and method gets a *summary*, computed once per analysis with opaque
  parameters: the events it applies to its parameters (and to their attributes, such as ``self.model``), what
  it stores on them and what it returns. A call anywhere — module level, another function, a method calling a
  method, another module of the project — applies the summary: the events are replayed on the caller's objects
  (so a rule sees them with the caller's history), stored attributes and returned values flow back, and each
  exit path of the callee stays a separate path of the caller. Recursion is cut off.
- **Modules.** Imports that resolve to a module of the checked project (``from model_utils import load``,
  ``from .loading import load``) bring that module's functions and classes; the library model says what every
  other call means.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from peftfix.source.flow import guards
from peftfix.source.flow.calls import CallArguments, CallSemantics
from peftfix.source.flow.model import (
    EMPTY,
    HISTORY_KINDS,
    MAX_PATHS,
    MODEL_VIEW_KINDS,
    Ev,
    Event,
    Kind,
    Obj,
    State,
    bounded,
    cap,
    holds,
)
from peftfix.source.flow.names import (
    CONFLICT,
    KNOWN_BUILTINS,
    GlobalValue,
    ImportTarget,
    dotted_name,
    global_definitions,
    import_bindings,
    is_tracked,
    on_node,
)
from peftfix.source.flow.scan import scan
from peftfix.source.module import SourceModule

if TYPE_CHECKING:
    from peftfix.source.flow.project import Project

EventHook = Callable[[tuple, Event], None]
FinalHook = Callable[[tuple], None]
FunctionNode = (ast.FunctionDef, ast.AsyncFunctionDef)
# Deeper attribute chains of a parameter (``self.a.b.c``) are not tracked as objects of their own.
MAX_ATTRIBUTE_DEPTH = 2


@dataclass
class Frame:
    """What a scope collects while it runs."""

    exits: list[tuple[frozenset, State]] = field(default_factory=list)  # (returned value, state)
    breaks: list[list[State]] = field(default_factory=list)  # one list per enclosing loop
    continues: list[list[State]] = field(default_factory=list)
    raises: list[list[State]] = field(default_factory=list)  # one list per enclosing try: where it may raise


@dataclass
class Summary:
    """A function interpreted once with opaque parameters."""

    params: list[tuple[str, Obj]]  # declared parameters, in order
    positional: list[str]  # names that can be passed by position
    derived: dict[Obj, tuple[Obj, str]]  # parameter attribute objects: obj -> (parameter obj, "attr.path")
    exits: list[tuple[frozenset, State]]
    raises: list[State] = field(default_factory=list)  # states an exception may leave the function from


@dataclass
class ModuleContext:
    module: SourceModule
    definitions: dict[str, object]
    values: dict[str, Optional[frozenset]] = field(default_factory=dict)  # resolved globals, memoised


class Analysis:
    """One analysis of the program from an entry module: its paths, its summaries, its events.

    Summaries are per analysis, so what an analysis reports never depends on which other analyses ran before it.
    """

    def __init__(self, project: Project, on_event: EventHook, on_final: FinalHook):
        self.project = project
        self._on_event = on_event
        self._on_final = on_final
        self.calls = CallSemantics(self)
        self.touched: set[SourceModule] = set()  # modules whose code this analysis interpreted
        self._contexts: dict[SourceModule, ModuleContext] = {}
        self._current: Optional[ModuleContext] = None
        self._in_function = False
        self._summaries: dict[ast.AST, Summary] = {}
        self._in_progress: set[ast.AST] = set()
        self._functions: dict[tuple[ast.AST, Optional[ast.AST]], Obj] = {}
        self._classes: dict[ast.AST, Obj] = {}
        self._modules: dict[SourceModule, Obj] = {}
        self._instances: dict[tuple[ast.AST, Obj], Obj] = {}
        self._resolving_bases: set[ast.AST] = set()
        self._library_refs: dict[str, Obj] = {}
        self._consts: dict[Any, Obj] = {}
        self._clones: dict[tuple[ast.AST, Obj], Obj] = {}
        self._derived: Optional[dict[Obj, tuple[Obj, str]]] = None
        self._derived_by_path: dict[tuple[Obj, str], Obj] = {}
        self._dispatched: set[tuple[tuple, Event]] = set()
        self._fork_target: Optional[ast.AST] = None
        self._argument_keys: dict[str, str] = {}  # while a summary is applied: callee path key -> caller's
        self._statement: Optional[ast.stmt] = None  # the assignment or expression statement being run
        # Where exceptions raised by the statement being run go (the innermost `try` of the current scope).
        self._raise_sink: Optional[list[State]] = None
        # Bumped whenever an object's history grows: raise points are recorded only after something happened.
        self._effects = 0
        self._forks: list[tuple[State, frozenset]] = []
        self._start_events: dict[ast.AST, Event] = {}

    # ------------------------------------------------------------------------------------------ entry point

    @property
    def module(self) -> SourceModule:
        assert self._current is not None, "no module is being interpreted"
        return self._current.module

    def run(self, module: SourceModule) -> None:
        """Interpret ``module``'s top level, then every class's methods and every function in it."""
        previous = self._enter(module)
        try:
            frame = Frame()
            finals = self.exec_block(module.tree.body, [State()], frame)
            self._finish([*finals, *(state for _, state in frame.exits)])
            for node in _definitions(module.tree.body, ast.ClassDef):
                self._analyze_class(node)
            for node, cls in _functions(module.tree.body):
                self.summary(self.function_object(node, cls, module))
        finally:
            self._current = previous

    def _enter(self, module: SourceModule) -> Optional[ModuleContext]:
        previous = self._current
        context = self._contexts.get(module)
        if context is None:
            context = self._contexts[module] = ModuleContext(module, global_definitions(module.tree))
        self._current = context
        self.touched.add(module)
        return previous

    def _analyze_class(self, node: ast.ClassDef) -> None:
        """Methods also run as entry points that start from what ``__init__`` left on ``self``."""
        methods = [s for s in node.body if isinstance(s, FunctionNode) and _first_param(s)]
        init = next((m for m in methods if m.name == "__init__"), None)
        if init is None:
            return
        summary = self.summary(self.function_object(init, node, self.module))
        if summary is None or not summary.params:
            return
        prefix = summary.params[0][0] + "."
        after_init = State.merge([state for _, state in summary.exits])
        if after_init is None:
            return
        attributes = {key[len(prefix) :]: value for key, value in after_init.env.items() if key.startswith(prefix)}
        for method in methods:
            if method is not init:
                self._method_entry(method, node, attributes, after_init.heap)

    def _method_entry(self, method: ast.AST, cls: ast.ClassDef, attributes: dict, heap: dict) -> None:
        state, params, _ = self._parameters(method, cls)
        if params:
            for attribute, value in attributes.items():
                state.env[f"{params[0][0]}.{attribute}"] = value
            for obj, histories in heap.items():
                state.heap.setdefault(obj, histories)
        self._interpret_function(method, cls, state)

    def _finish(self, states: Iterable[State]) -> None:
        for state in states:
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
        self._effects += 1
        extended = set()
        for history in state.heap.get(obj, frozenset()):
            self._dispatch(history, event)
            extended.add((*history, event))
        state.heap[obj] = cap(frozenset(extended))

    def _dispatch(self, history: tuple, event: Event) -> None:
        key = (history, event)
        if key not in self._dispatched:
            self._dispatched.add(key)
            self._on_event(history, event)

    def emit(self, event: Event) -> None:
        """An event that belongs to no object (a config was built)."""
        self._dispatch((), event)

    def new_object(self, kind: Kind, state: State, first_event: Optional[Event] = None, **info: Any) -> Obj:
        obj = Obj(kind, **info)
        if kind in HISTORY_KINDS:
            history = (first_event,) if first_event is not None else ()
            if first_event is not None:
                self._dispatch((), first_event)
            state.heap[obj] = frozenset([history])
        return obj

    def const(self, node: ast.AST, value: Any, key: Optional[str]) -> frozenset:
        cache_key = (node, type(value), value, key)
        obj = self._consts.get(cache_key)
        if obj is None:
            obj = self._consts[cache_key] = Obj(Kind.CONST, value=value, key=key, node=node)
        return frozenset([obj])

    def assigned_names(self, call: ast.AST) -> frozenset[str]:
        """The names the statement being run assigns ``call``'s result to, when ``call`` is its whole value."""
        statement = self._statement
        if statement is None or getattr(statement, "value", None) is not call:
            return frozenset()
        targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
        return frozenset(name for target in targets if target is not None and (name := dotted_name(target)))

    def end_path(self, state: State) -> None:
        state.ended = True

    # --------------------------------------------------------------------------------------- statements

    def exec_block(self, statements: Sequence[ast.stmt], paths: list[State], frame: Frame) -> list[State]:
        if not frame.raises and self._raise_sink is None:
            # The common case, kept tight: most statements of a module run here.
            for statement in statements:
                if not paths:
                    return []
                if len(paths) == 1:
                    paths = self.exec_statement(statement, paths[0], frame)
                    if len(paths) > 1:
                        paths = bounded(paths)
                    continue
                following: list[State] = []
                for state in paths:
                    following.extend(self.exec_statement(statement, state, frame))
                # Paths only multiply at branches (which bound their own joins) and at forking calls.
                paths = following if len(following) <= len(paths) else bounded(following)
            return paths
        recorded = -1
        for statement in statements:
            if not paths:
                return []
            sink = frame.raises[-1] if frame.raises else None
            if sink is not None and _may_raise(statement) and recorded != self._effects:
                sink.extend(state.copy() for state in paths)
                recorded = self._effects
            outer_sink, self._raise_sink = self._raise_sink, sink
            after: list[State] = []
            try:
                for state in paths:
                    after.extend(self.exec_statement(statement, state, frame))
            finally:
                self._raise_sink = outer_sink
            paths = after if len(after) <= len(paths) else bounded(after)
        return paths

    def exec_statement(self, node: ast.stmt, state: State, frame: Frame) -> list[State]:
        if isinstance(node, ast.If):
            return self.exec_if(node, state, frame)
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            return self.exec_loop(node, state, frame)
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            return self.exec_try(node, state, frame)
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                value = self.eval(item.context_expr, state)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, value, state)
            return self.exec_block(node.body, [state], frame)
        if isinstance(node, FunctionNode):
            state.bind(node.name, frozenset([self.function_object(node, None, self.module)]))
            return [state]
        if isinstance(node, ast.ClassDef):
            state.bind(node.name, frozenset([self.class_object(node, self.module)]))
            return [state]
        if isinstance(node, ast.Match):
            self.eval(node.subject, state)
            outcomes = [state]
            for case in node.cases:
                outcomes += self.exec_block(case.body, [state.copy()], frame)
            return bounded(outcomes)
        return self.exec_simple(node, state, frame)

    def exec_if(self, node: ast.If, state: State, frame: Frame) -> list[State]:
        self.eval(node.test, state)
        if state.ended:
            return []
        when_true, when_false = guards.narrow(self, node.test, state)
        paths = self.exec_block(node.body, [when_true], frame) if when_true is not None else []
        if when_false is not None:
            paths += self.exec_block(node.orelse, [when_false], frame) if node.orelse else [when_false]
        return bounded(paths)

    def exec_loop(self, node: ast.stmt, state: State, frame: Frame) -> list[State]:
        frame.breaks.append([])
        frame.continues.append([])
        is_for = isinstance(node, (ast.For, ast.AsyncFor))
        iterated = self.eval(node.iter, state) if is_for else self.eval(node.test, state)  # type: ignore[attr-defined]
        entry = [state]
        # A `for` loop is taken to run at least once (it iterates over a model's parameters, a dataset...);
        # a `while` loop may not run at all.
        outcomes = [] if is_for else [state]
        for _ in range(2):
            body_paths = [path.copy() for path in entry]
            if is_for:
                for path in body_paths:
                    # Iterating over model.parameters() yields parameters of that model (for requires_grad).
                    self.bind(node.target, _views(iterated), path)  # type: ignore[attr-defined]
            after = self.exec_block(node.body, body_paths, frame)  # type: ignore[attr-defined]
            after = bounded(after + frame.continues[-1])
            frame.continues[-1] = []
            if not after:
                break
            outcomes += after
            entry = bounded(entry + after)
        frame.continues.pop()
        breaks = frame.breaks.pop()
        result = bounded(outcomes)
        if node.orelse and result:  # type: ignore[attr-defined]
            result = self.exec_block(node.orelse, result, frame)  # type: ignore[attr-defined]
        return bounded(result + breaks)

    def exec_try(self, node: ast.stmt, state: State, frame: Frame) -> list[State]:
        frame.raises.append([])
        body = self.exec_block(node.body, [state], frame)  # type: ignore[attr-defined]
        raised = bounded(frame.raises.pop())
        outcomes: list[State] = []
        for handler in node.handlers:  # type: ignore[attr-defined]
            entries = [entry.copy() for entry in raised]
            for entry in entries:
                if handler.name:
                    entry.bind(handler.name, EMPTY)
            outcomes += self.exec_block(handler.body, entries, frame)
        if node.orelse and body:  # type: ignore[attr-defined]
            body = self.exec_block(node.orelse, body, frame)  # type: ignore[attr-defined]
        result = bounded(body + outcomes)
        finalbody = node.finalbody  # type: ignore[attr-defined]
        if finalbody:
            if result:
                return self.exec_block(finalbody, result, frame)
            # Every path left by an exception: the final block runs, then the exception goes on.
            self.exec_block(finalbody, [entry.copy() for entry in raised], frame)
            return []
        return result

    def exec_simple(self, node: ast.stmt, state: State, frame: Frame) -> list[State]:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Expr, ast.Return)):
            return self._exec_forking(node, state, frame)
        if isinstance(node, ast.AugAssign):
            value = self.eval(node.value, state)
            name = dotted_name(node.target)
            if name is not None:
                state.bind(name, state.env.get(name, EMPTY) | _views(value))
        elif isinstance(node, ast.Raise):
            if node.exc is not None:
                self.eval(node.exc, state)
            return []
        elif isinstance(node, ast.Break):
            if frame.breaks:
                frame.breaks[-1].append(state)
            return []
        elif isinstance(node, ast.Continue):
            if frame.continues:
                frame.continues[-1].append(state)
            return []
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self._forget_target(target, state)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for name, imported in import_bindings(node):
                value = self.resolve_import(imported) if imported is not None else EMPTY
                if value:
                    state.bind(name, value)
                elif name in state.env:
                    state.forget(name)
        elif isinstance(node, ast.Assert):
            self.eval(node.test, state)
            narrowed, _ = guards.narrow(self, node.test, state)
            return [narrowed] if narrowed is not None else []
        elif isinstance(node, (ast.Global, ast.Nonlocal, ast.Pass)):
            pass
        return [] if state.ended else [state]

    def _exec_forking(self, node: ast.stmt, state: State, frame: Frame) -> list[State]:
        """Assignments, expression statements and returns: a function called as the whole value may continue
        along several of its exit paths, each a path of its own here."""
        value_node = getattr(node, "value", None)
        outer_target, outer_forks = self._fork_target, self._forks
        self._fork_target, self._forks = value_node if isinstance(value_node, ast.Call) else None, []
        outer_statement, self._statement = self._statement, node
        try:
            value = self.eval(value_node, state) if value_node is not None else EMPTY
            forks = self._forks
        finally:
            self._fork_target, self._forks = outer_target, outer_forks
            self._statement = outer_statement
        results = []
        for path, path_value in [(state, value), *forks]:
            if path.ended:
                continue
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self.bind(target, path_value, path)
            elif isinstance(node, ast.AnnAssign):
                if node.value is not None:
                    self.bind(node.target, path_value, path)
            elif isinstance(node, ast.Return):
                frame.exits.append((path_value, path))
                continue
            results.append(path)
        return results

    def bind(self, target: ast.AST, value: frozenset, state: State) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            elements = target.elts
            sequences = [obj for obj in value if obj.kind is Kind.SEQUENCE and len(obj.info["items"]) == len(elements)]
            for index, element in enumerate(elements):
                if isinstance(element, ast.Starred):
                    self.bind(element.value, EMPTY, state)
                    continue
                item = EMPTY
                for sequence in sequences:
                    item = item | sequence.info["items"][index]
                # Unpacking a view (`for name, p in model.named_parameters()`) keeps the view.
                self.bind(element, item | _views(value), state)
            return
        if isinstance(target, ast.Subscript):
            self._store_item(target, value, state)
            return
        if isinstance(target, ast.Starred):
            self.bind(target.value, EMPTY, state)
            return
        name = dotted_name(target)
        if name is not None:
            if not value and name not in state.env and not self._shadows_global(name):
                state.forget(name)  # nothing known, nothing to hide: no entry (most assignments of a module)
            else:
                state.bind(name, value)
            if isinstance(target, ast.Attribute) and target.attr == "requires_grad":
                self.calls.requires_grad_assigned(target, state)

    def _shadows_global(self, name: str) -> bool:
        """Whether binding ``name`` inside a function hides a module-level name the function would otherwise see."""
        return self._in_function and self._current is not None and name in self._current.definitions

    def _store_item(self, target: ast.Subscript, value: frozenset, state: State) -> None:
        """``kwargs["load_in_4bit"] = True``: the dict of known keys the variable holds gets the key, on this path."""
        base = self.eval(target.value, state)
        key = target.slice.value if isinstance(target.slice, ast.Constant) else None
        name = dotted_name(target.value)
        if not isinstance(key, str) or name is None:
            return
        updated = []
        for obj in base:
            if obj.kind is Kind.MAPPING:
                items = {**obj.info["items"], key: value}
                nodes = {**obj.info["nodes"], key: None}
                updated.append(Obj(Kind.MAPPING, items=items, nodes=nodes))
        if updated:
            state.env[name] = frozenset(updated)

    def _forget_target(self, target: ast.AST, state: State) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._forget_target(element, state)
            return
        name = dotted_name(target)
        if name is not None and name in state.env:
            state.forget(name)

    # -------------------------------------------------------------------------------------- expressions

    def eval(self, node: Optional[ast.AST], state: State) -> frozenset:
        if node is None:
            return EMPTY
        if isinstance(node, ast.Name):
            value = state.env.get(node.id)
            if value is None and self._in_function:
                value = self.global_value(node.id)
            return value or EMPTY
        if isinstance(node, ast.Attribute):
            return self._eval_attribute(node, state)
        if isinstance(node, ast.Call):
            return self.calls.evaluate(node, state)
        if isinstance(node, ast.Subscript):
            base = self.eval(node.value, state)
            self.eval(node.slice, state)
            return self.calls.subscript(node, base, state)
        if isinstance(node, ast.BoolOp):
            value = EMPTY
            for operand in node.values:
                value |= self.eval(operand, state)
            return value
        if isinstance(node, ast.BinOp):
            return _views(self.eval(node.left, state) | self.eval(node.right, state))
        if isinstance(node, ast.UnaryOp):
            return _views(self.eval(node.operand, state))
        if isinstance(node, ast.Compare):
            self.eval(node.left, state)
            for comparator in node.comparators:
                self.eval(comparator, state)
            return EMPTY
        if isinstance(node, ast.IfExp):
            self.eval(node.test, state)
            return self.eval(node.body, state) | self.eval(node.orelse, state)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = tuple(self.eval(element, state) for element in node.elts)
            return frozenset([Obj(Kind.SEQUENCE, items=items, node=node, module=self.module)])
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return self.const(node, node.value, f"str:{node.value!r}")
            if node.value is None or isinstance(node.value, (int, bool)):
                return self.const(node, node.value, None)
            return EMPTY
        if isinstance(node, ast.NamedExpr):
            value = self.eval(node.value, state)
            self.bind(node.target, value, state)
            return value
        if isinstance(node, (ast.Await, ast.Starred)):
            return self.eval(node.value, state)
        if isinstance(node, ast.Dict):
            return self._eval_dict(node, state)
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                self.eval(part, state)
            return EMPTY
        if isinstance(node, ast.FormattedValue):
            self.eval(node.value, state)
            return EMPTY
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for generator in node.generators:
                self.eval(generator.iter, state)
            return EMPTY
        if isinstance(node, ast.Lambda):
            return EMPTY
        return EMPTY

    def _eval_dict(self, node: ast.Dict, state: State) -> frozenset:
        items: dict[str, frozenset] = {}
        nodes: dict[str, ast.AST] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            evaluated = self.eval(value, state)
            if key is None:  # `**other`: its known keys come along
                for obj in evaluated:
                    if obj.kind is Kind.MAPPING:
                        items.update(obj.info["items"])
                        nodes.update(obj.info["nodes"])
                continue
            self.eval(key, state)
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                items[key.value] = evaluated
                nodes[key.value] = value
        return frozenset([Obj(Kind.MAPPING, items=items, nodes=nodes)])

    def _eval_attribute(self, node: ast.Attribute, state: State) -> frozenset:
        name = dotted_name(node)
        if name is not None and name in state.env:
            return state.env[name]
        base = self.eval(node.value, state)
        program = self.attribute_values(base, node.attr)
        for obj in base:
            if obj.kind is Kind.INSTANCE:
                program |= state.env.get(f"{obj.info['key']}.{node.attr}", EMPTY)
        if program:
            return program
        if name is not None and name.count(".") <= MAX_ATTRIBUTE_DEPTH:
            params = [obj for obj in base if obj.kind is Kind.PARAM]
            if params and len(params) == len(base):
                return self._derived_parameter(name, params, node.attr, state)
        return frozenset(obj for obj in base if obj.kind is Kind.OUTPUT)

    def _derived_parameter(self, name: str, params: list[Obj], attribute: str, state: State) -> frozenset:
        """``self.model`` where ``self`` is a parameter: an object of its own, so what the function does to it
        is part of the summary and lands on the caller's ``self.model``."""
        found = []
        for param in params:
            key = (param, attribute)
            obj = self._derived_by_path.get(key)
            if obj is None:
                obj = self._derived_by_path[key] = Obj(
                    Kind.PARAM, name=name, base=param, attribute=attribute, function=param.info.get("function")
                )
            if obj not in state.heap:
                function = param.info.get("function")
                start = self._start_events.get(function) if function is not None else None
                state.heap[obj] = frozenset([(start,)] if start is not None else [()])
            if self._derived is not None:
                self._derived[obj] = (param, attribute)
            found.append(obj)
        value = frozenset(found)
        state.env[name] = value
        return value

    def attribute_values(self, receiver: frozenset, attribute: str) -> frozenset:
        found = EMPTY
        for obj in receiver:
            if obj.kind is Kind.PROJECT_MODULE:
                found |= self._module_global(obj.info["module"], attribute)
            elif obj.kind is Kind.CLASS:
                found |= self._class_method(obj.info["node"], obj.info["module"], attribute)
            elif obj.kind is Kind.PARAM and "cls" in obj.info:
                found |= self._class_method(obj.info["cls"], obj.info["cls_module"], attribute)
            elif obj.kind is Kind.INSTANCE:
                found |= self._class_method(obj.info["cls"], obj.info["module"], attribute)
        return found

    def library_base(self, cls: ast.ClassDef, module: SourceModule, depth: int = 0) -> Optional[str]:
        """The library class a class of the program derives from (``class MyTrainer(Trainer)``), if any: calls
        of the class mean what calls of that library class mean."""
        if depth >= 4 or cls in self._resolving_bases:
            return None
        self._resolving_bases.add(cls)
        previous = self._enter(module)
        try:
            in_function, self._in_function = self._in_function, True  # bases are module-level names
            try:
                for base in cls.bases:
                    qualified = self._qualified(base, State())
                    if is_tracked(qualified):
                        return qualified
            finally:
                self._in_function = in_function
        finally:
            self._current = previous
            self._resolving_bases.discard(cls)
        return None

    def _class_method(self, cls: ast.ClassDef, module: SourceModule, name: str, depth: int = 0) -> frozenset:
        """The method ``name`` of ``cls`` or of a base class of the program (by name, a few levels up)."""
        method = _method(cls, name)
        if method is not None:
            return frozenset([self.function_object(method, cls, module)])
        if depth >= 3:
            return EMPTY
        for base in cls.bases:
            if not isinstance(base, ast.Name):
                continue
            previous = self._enter(module)
            try:
                value = self.global_value(base.id) or EMPTY
            finally:
                self._current = previous
            for obj in value:
                if obj.kind is Kind.CLASS:
                    found = self._class_method(obj.info["node"], obj.info["module"], name, depth + 1)
                    if found:
                        return found
        return EMPTY

    def qualified(self, node: ast.AST, state: State) -> Optional[str]:
        """The library name ``node`` (a name or attribute chain) refers to on this path, in a tracked package."""
        found = self._qualified(node, state)
        return found if is_tracked(found) else None

    def _qualified(self, node: ast.AST, state: State) -> Optional[str]:
        if isinstance(node, ast.Attribute):
            base = self._qualified(node.value, state)
            return f"{base}.{node.attr}" if base is not None else None
        if not isinstance(node, ast.Name):
            return None
        value = state.env.get(node.id)
        if value is None and self._in_function:
            value = self.global_value(node.id)
        if value is None:
            return f"builtins.{node.id}" if node.id in KNOWN_BUILTINS else None
        if len(value) == 1:
            (only,) = value
            if only.kind is Kind.MODULE:
                return str(only.info["qualified"])
            if only.kind is Kind.CLASS:
                return self.library_base(only.info["node"], only.info["module"])
            return None
        names = {obj.info["qualified"] for obj in value if obj.kind is Kind.MODULE}
        # Every binding that may reach this use must be the same import.
        if len(names) == 1 and all(obj.kind is Kind.MODULE for obj in value):
            return str(next(iter(names)))
        return None

    # ---------------------------------------------------------------------------------- names and modules

    def global_value(self, name: str) -> Optional[frozenset]:
        """What a name the function did not bind means: the module-level binding, when it is unambiguous."""
        context = self._current
        assert context is not None
        if name in context.values:
            return context.values[name]
        definition = context.definitions.get(name)
        value: Optional[frozenset]
        if definition is None or definition is CONFLICT:
            value = None
        elif isinstance(definition, ImportTarget):
            value = self.resolve_import(definition) or None
        elif isinstance(definition, FunctionNode):
            value = frozenset([self.function_object(definition, None, context.module)])
        elif isinstance(definition, ast.ClassDef):
            value = frozenset([self.class_object(definition, context.module)])
        elif isinstance(definition, GlobalValue):
            context.values[name] = None  # a literal that refers to itself resolves to nothing
            outer, self._in_function = self._in_function, True
            try:
                value = self.eval(definition.node, State()) or None
            finally:
                self._in_function = outer
        else:
            value = None
        context.values[name] = value
        return value

    def _module_global(self, module: SourceModule, name: str) -> frozenset:
        previous = self._enter(module)
        try:
            value = self.global_value(name)
        finally:
            self._current = previous
        if value is None:
            # `import pkg` then `pkg.sub.f()`: a submodule.
            submodule = self.project.resolve_submodule(module, name)
            if submodule is not None:
                return frozenset([self.module_object(submodule)])
        return value or EMPTY

    def resolve_import(self, target: ImportTarget) -> frozenset:
        """What an import binds: a module, function or class of the project, else the library name."""
        resolved = self.project.resolve(self.module, target)
        if resolved is not None:
            module, name = resolved
            if name is None:
                return frozenset([self.module_object(module)])
            return self._module_global(module, name)
        qualified = target.qualified
        if qualified is None:
            return EMPTY
        obj = self._library_refs.get(qualified)
        if obj is None:
            obj = self._library_refs[qualified] = Obj(Kind.MODULE, qualified=qualified)
        return frozenset([obj])

    def module_object(self, module: SourceModule) -> Obj:
        obj = self._modules.get(module)
        if obj is None:
            obj = self._modules[module] = Obj(Kind.PROJECT_MODULE, module=module)
        return obj

    def function_object(self, node: ast.AST, cls: Optional[ast.AST], module: SourceModule) -> Obj:
        key = (node, cls)
        obj = self._functions.get(key)
        if obj is None:
            obj = self._functions[key] = Obj(Kind.FUNCTION, node=node, cls=cls, module=module)
        return obj

    def class_object(self, node: ast.ClassDef, module: SourceModule) -> Obj:
        obj = self._classes.get(node)
        if obj is None:
            obj = self._classes[node] = Obj(Kind.CLASS, node=node, module=module)
        return obj

    # ------------------------------------------------------------------------------------------ summaries

    def _parameters(self, function: ast.AST, cls: Optional[ast.AST]) -> tuple[State, list[tuple[str, Obj]], list[str]]:
        state = State()
        arguments = function.args  # type: ignore[attr-defined]
        declared = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        start = self._start_events.get(function)
        if start is None:
            start = self._start_events[function] = Event(Ev.PARAM_START, function, self.module)
        params = []
        method = cls is not None and _binding(function) != "static"
        for index, arg in enumerate(declared):
            info: dict[str, Any] = {"name": arg.arg, "function": function}
            if method and index == 0:
                # `self` (or `cls`): its attributes are the class's methods.
                info.update(cls=cls, cls_module=self.module)
            obj = Obj(Kind.PARAM, **info)
            state.heap[obj] = frozenset([(start,)])
            state.bind(arg.arg, frozenset([obj]))
            params.append((arg.arg, obj))
        for extra in (arguments.vararg, arguments.kwarg):
            if extra is not None:
                state.bind(extra.arg, EMPTY)
        positional = [arg.arg for arg in [*arguments.posonlyargs, *arguments.args]]
        return state, params, positional

    def summary(self, function: Obj) -> Optional[Summary]:
        """``function`` interpreted once with opaque parameters; None while it runs (recursion)."""
        node = function.info["node"]
        if node in self._summaries:
            return self._summaries[node]
        if node in self._in_progress:
            return None
        self._in_progress.add(node)
        previous = self._enter(function.info["module"])
        try:
            state, params, positional = self._parameters(node, function.info["cls"])
            derived: dict[Obj, tuple[Obj, str]] = {}
            raises: list[State] = []
            if _relevant(node, self.module):
                exits = self._interpret_function(node, function.info["cls"], state, derived, raises)
            else:  # it names nothing the flow tracks and hands no parameter back: nothing to learn from it
                exits = [(EMPTY, state)]
        finally:
            self._current = previous
            self._in_progress.discard(node)
        summary = Summary(params=params, positional=positional, derived=derived, exits=exits, raises=raises)
        self._summaries[node] = summary
        return summary

    def _interpret_function(
        self,
        node: ast.AST,
        cls: Optional[ast.AST],
        state: State,
        derived: Optional[dict[Obj, tuple[Obj, str]]] = None,
        raises: Optional[list[State]] = None,
    ) -> list[tuple[frozenset, State]]:
        frame = Frame()
        if raises is not None:
            frame.raises.append(raises)  # where an exception may leave the function: for callers in a `try`
        outer_in_function, outer_derived = self._in_function, self._derived
        outer_fork = self._fork_target, self._forks
        outer_sink = self._raise_sink
        self._in_function, self._derived = True, derived
        self._fork_target, self._forks = None, []
        self._raise_sink = None
        try:
            finals = self.exec_block(node.body, [state], frame)  # type: ignore[attr-defined]
        finally:
            self._in_function, self._derived = outer_in_function, outer_derived
            self._fork_target, self._forks = outer_fork
            self._raise_sink = outer_sink
        if raises is not None:
            raises[:] = bounded(raises)
        exits = frame.exits + [(EMPTY, final) for final in finals]
        exits = _bounded_exits(exits)
        self._finish(state for _, state in exits)
        return exits

    def call_function(
        self, call: ast.Call, function: Obj, receiver: frozenset, arguments: CallArguments, state: State
    ) -> frozenset:
        """Apply ``function``'s summary at ``call``."""
        node = function.info["node"]
        cls = function.info["cls"]
        summary = self.summary(function)
        if summary is None:
            return EMPTY
        binding_kind = _binding(node) if cls is not None else "static"
        on_class = any(obj.kind is Kind.CLASS for obj in receiver)
        bound_method = binding_kind == "class" or (binding_kind == "instance" and bool(receiver) and not on_class)
        binding, nodes = _bind(summary, arguments, receiver if bound_method else None, call)
        self._materialize_arguments(summary, binding, nodes, state)
        paths = {name: self._caller_path(nodes.get(name), binding.get(name, EMPTY)) for name, _ in summary.params}
        # What each parameter's path argument is known as here (`name:args.model_path`), for loads in the callee.
        outer_keys, self._argument_keys = (
            self._argument_keys,
            {
                f"name:{name}": key
                for name, node in nodes.items()
                if (key := self.calls.value_key(node, binding.get(name, EMPTY))) is not None
            },
        )
        results: list[tuple[State, frozenset]] = []
        for value, exit_state in summary.exits:
            caller = state.copy()
            mapping = {obj: binding.get(name, EMPTY) for name, obj in summary.params}
            for obj, (param, attribute) in summary.derived.items():
                mapping[obj] = self._caller_attribute(paths.get(_param_name(summary, param)), attribute, caller)
            if not self._replay_parameters(mapping, exit_state, caller):
                continue  # this exit of the callee needs arguments other than these
            self._store_attributes(summary, paths, exit_state, caller, mapping, call)
            returned = self._import_value(value, call, exit_state, caller, mapping)
            results.append((caller, returned))
        if self._raise_sink is not None:
            # The caller handles exceptions: the callee may raise after some of its effects.
            for raised in summary.raises:
                caller = state.copy()
                mapping = {obj: binding.get(name, EMPTY) for name, obj in summary.params}
                if self._replay_parameters(mapping, raised, caller):
                    self._raise_sink.append(caller)
        self._argument_keys = outer_keys
        if not results:  # every path through the function raises or exits
            self.end_path(state)
            return EMPTY
        results = _dedupe_results(results)
        if call is self._fork_target and len(results) > 1:
            first, *rest = results
            state.env, state.heap = first[0].env, first[0].heap
            self._forks.extend(rest[: MAX_PATHS - 1])
            return first[1]
        merged = State.merge(caller for caller, _ in results)
        assert merged is not None
        state.env, state.heap = merged.env, merged.heap
        returned = EMPTY
        for _, value in results:
            returned |= value
        return returned

    def _in_caller_context(self, event: Event, state: State) -> Event:
        """A callee's adapter load as the caller sees it: the caller's tokenizers are in play too, and the
        adapter path is known by the caller's name for the argument it passed."""
        caller_tokenizers = tuple(
            item
            for item in self.calls.tokenizers_in_scope(state)
            if item[1] not in {t[1] for t in event.get("tokenizers", ())}
        )
        path_key = self._caller_key(event.get("path_key"))
        if not caller_tokenizers and path_key is None:
            return event
        info = dict(event.info)
        if caller_tokenizers:
            info["caller_tokenizers"] = (*event.get("caller_tokenizers", ()), *caller_tokenizers)
        if path_key is not None:
            info["path_key"] = path_key
        return Event(event.kind, event.node, event.module, info)

    def _caller_key(self, key: Optional[str]) -> Optional[str]:
        """A callee's path key (`name:model_args.model_name_or_path`) as the caller names the same path, when it
        goes through a parameter (`name:args.model_path`, or a literal the caller passed)."""
        if not key or not key.startswith("name:"):
            return None
        head, dot, rest = key[len("name:") :].partition(".")
        outer = self._argument_keys.get(f"name:{head}")
        if outer is None or not dot:
            return outer
        return f"{outer}.{rest}" if outer.startswith("name:") else None

    def _in_caller_terms(self, histories: frozenset) -> frozenset:
        """Histories of an object the callee created, its creation's path named as the caller names it."""
        translated = set()
        for history in histories:
            first = history[0] if history else None
            key = self._caller_key(first.get("path_key")) if first is not None else None
            if first is not None and key is not None:
                history = (Event(first.kind, first.node, first.module, {**first.info, "path_key": key}), *history[1:])
            translated.add(history)
        return frozenset(translated)

    def _reload_in_caller_context(self, histories: frozenset, caller: State) -> None:
        """Adapter loads inside a callee that created the model, from a path the caller passed, are seen again as
        the caller sees them (its tokenizers, its name for that path): what only the caller knows about the adapter
        may make them findings. A path the callee made up itself tells the caller's tokenizers nothing."""
        for history in histories:
            for index, event in enumerate(history):
                if event.kind is Ev.LOAD_PEFT and self._caller_key(event.get("path_key")) is not None:
                    seen = self._in_caller_context(event, caller)
                    if seen is not event:
                        self._dispatch(history[:index], seen)

    def _replay_parameters(self, mapping: dict, exit_state: State, caller: State) -> bool:
        for param, actual in mapping.items():
            suffixes = [history[1:] for history in exit_state.heap.get(param, frozenset())]
            possible = [self._replay(obj, suffixes, caller) for obj in actual]
            if possible and not any(possible):
                return False
        return True

    def construct(self, call: ast.Call, cls: Obj, arguments: CallArguments, state: State) -> frozenset:
        """``Cls(...)`` for a class of the program: an instance, set up by the class's ``__init__``."""
        key = f"@{len(self._instances)}"
        instance = self._instances.get((call, cls))
        if instance is None:
            instance = self._instances[(call, cls)] = Obj(
                Kind.INSTANCE, cls=cls.info["node"], module=cls.info["module"], key=key
            )
        value = frozenset([instance])
        init = self._class_method(cls.info["node"], cls.info["module"], "__init__")
        for function in init:
            if function.kind is Kind.FUNCTION:
                self.call_function(call, function, value, arguments, state)
        return value

    def _caller_path(self, node: Optional[ast.AST], value: frozenset) -> Optional[str]:
        """Where the caller keeps the attributes of an argument: its dotted name, or an instance's key."""
        name = dotted_name(node) if node is not None else None
        if name is not None:
            return name
        instances = [obj for obj in value if obj.kind is Kind.INSTANCE]
        if len(instances) == 1 and len(value) == 1:
            return str(instances[0].info["key"])
        return None

    def _materialize_arguments(self, summary: Summary, binding: dict, nodes: dict, state: State) -> None:
        """A plain variable passed where the callee treats it as a model holds one, even if unseen here."""
        for name, param in summary.params:
            if binding.get(name) or name not in nodes:
                continue
            used = any(
                event.kind not in _DEFERRED
                for _, exit_state in summary.exits
                for history in exit_state.heap.get(param, ())
                for event in history[1:]
            )
            if used:
                binding[name] = self.calls.materialize(nodes[name], state)

    def _caller_attribute(self, path: Optional[str], attribute: str, state: State) -> frozenset:
        """The caller's value of ``<argument>.<attribute>`` (``self.model`` for a method called on ``self``)."""
        if path is None:
            return EMPTY
        if path.startswith("@"):
            return state.env.get(f"{path}.{attribute}", EMPTY)
        access: ast.expr = ast.Name(id=path.split(".")[0], ctx=ast.Load())
        for part in [*path.split(".")[1:], attribute]:
            access = ast.Attribute(value=access, attr=part, ctx=ast.Load())
        assert isinstance(access, ast.Attribute)
        return self._eval_attribute(access, state)

    def _store_attributes(
        self, summary: Summary, paths: dict, exit_state: State, caller: State, mapping: dict, call: ast.Call
    ) -> None:
        """What the callee stored on a parameter (``self.model = ...``) is stored on the caller's argument."""
        for name, _ in summary.params:
            base = paths.get(name)
            if base is None:
                continue
            prefix = name + "."
            for key, value in exit_state.env.items():
                if key.startswith(prefix):
                    caller.env[base + key[len(name) :]] = self._import_value(value, call, exit_state, caller, mapping)

    def _replay(self, obj: Obj, suffixes: list, state: State) -> bool:
        """Replay a callee's events on a caller's object (translating parameter-dependent calls). False when no
        suffix is possible for this object: the branches the callee took assume something it is not."""
        if not any(suffixes):
            return True
        if obj.kind in MODEL_VIEW_KINDS:
            translated = [[_translate(event, obj.kind) for event in suffix] for suffix in suffixes]
            kept = [[event for event in suffix if event is not None] for suffix in translated]
            for model in obj.models:
                self._replay(model, kept, state)
            return True
        if obj.kind not in HISTORY_KINDS:
            # A plain value: only the callee's assumptions about it matter.
            return any(all(holds(e, obj, None) for e in suffix if e.kind is Ev.ASSUME) for suffix in suffixes)
        extended = set()
        for history in state.heap.get(obj, frozenset()):
            for suffix in suffixes:
                if not _feasible(obj, history, suffix):
                    continue
                current = history
                for event in suffix:
                    if event.kind is Ev.ASSUME:
                        continue
                    if event.kind is Ev.LOAD_PEFT:
                        event = self._in_caller_context(event, state)
                    self._dispatch(current, event)
                    current = (*current, event)
                extended.add(current)
        if not extended and state.heap.get(obj):
            return False
        state.heap[obj] = cap(frozenset(extended))
        return True

    def _import_value(
        self, value: frozenset, call: ast.AST, exit_state: State, caller: State, mapping: dict
    ) -> frozenset:
        """Bring what a callee returns into the caller: its parameters become the caller's arguments, objects it
        created become copies (one per call site) carrying their histories."""
        imported = EMPTY
        for obj in value:
            if obj in mapping:
                imported |= mapping[obj]
                continue
            if obj.kind in (Kind.FUNCTION, Kind.CLASS, Kind.MODULE, Kind.PROJECT_MODULE, Kind.CONST):
                imported |= frozenset([obj])
                continue
            if obj.kind is Kind.INSTANCE:
                imported |= frozenset([obj])
                prefix = f"{obj.info['key']}."
                for key_, item in list(exit_state.env.items()):
                    if key_.startswith(prefix) and key_ not in caller.env:
                        caller.env[key_] = EMPTY  # guards against an instance holding itself
                        caller.env[key_] = self._import_value(item, call, exit_state, caller, mapping)
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
                if obj.kind is Kind.MAPPING:
                    clone.info["items"] = {
                        key_: self._import_value(item, call, exit_state, caller, mapping)
                        for key_, item in info["items"].items()
                    }
            if obj.kind in HISTORY_KINDS:
                histories = exit_state.heap.get(obj, frozenset([()]))
                caller.heap[clone] = self._in_caller_terms(histories)
                self._reload_in_caller_context(histories, caller)
            imported |= frozenset([clone])
        return imported


def _feasible(obj: Obj, history: tuple, suffix: Sequence[Event]) -> bool:
    """Whether every assumption in a callee's ``suffix`` holds for the caller's object along the way."""
    current = history
    for event in suffix:
        if event.kind is Ev.ASSUME:
            if not holds(event, obj, current):
                return False
        else:
            current = (*current, event)
    return True


def _translate(event: Event, view_kind: Kind) -> Optional[Event]:
    """A parameter's ``.train()``/``.step()``/``.backward()`` trains only when the caller passed a trainer,
    an optimizer or a loss; on a model ``.train()`` merely switches mode."""
    wanted = {Kind.TRAINER: Ev.CALL_TRAIN, Kind.OPTIMIZER: Ev.CALL_STEP, Kind.OUTPUT: Ev.CALL_BACKWARD}.get(view_kind)
    if event.kind is wanted:
        return Event(Ev.TRAIN, event.node, event.module, {"via": event.get("via")})
    return None


_DEFERRED = (Ev.CALL_TRAIN, Ev.CALL_STEP, Ev.CALL_BACKWARD)


def _views(value: frozenset) -> frozenset:
    return frozenset(obj for obj in value if obj.kind in MODEL_VIEW_KINDS)


def _bind(
    summary: Summary, arguments: CallArguments, receiver: Optional[frozenset], call: ast.Call
) -> tuple[dict[str, frozenset], dict[str, ast.AST]]:
    """Which value (and which caller expression) each parameter of the callee receives."""
    values: dict[str, frozenset] = {}
    nodes: dict[str, ast.AST] = {}
    positional = list(summary.positional)
    if receiver is not None and positional:
        self_name = positional.pop(0)
        values[self_name] = receiver
        if isinstance(call.func, ast.Attribute):
            nodes[self_name] = call.func.value
    for (node, value), name in zip(arguments.positional, positional, strict=False):
        values[name] = value
        nodes[name] = node
    for name, (node, value) in arguments.keywords.items():
        values[name] = value
        nodes[name] = node
    return values, nodes


def _param_name(summary: Summary, param: Obj) -> str:
    return next((name for name, obj in summary.params if obj is param), "")


def _bounded_exits(exits: list[tuple[frozenset, State]]) -> list[tuple[frozenset, State]]:
    if len(exits) <= MAX_PATHS:
        return exits
    head, tail = exits[: MAX_PATHS - 1], exits[MAX_PATHS - 1 :]
    merged = State.merge(state for _, state in tail)
    assert merged is not None
    value = EMPTY
    for returned, _ in tail:
        value |= returned
    return [*head, (value, merged)]


def _dedupe_results(results: list[tuple[State, frozenset]]) -> list[tuple[State, frozenset]]:
    unique: list[tuple[State, frozenset]] = []
    for state, value in results:
        if not any(value == other_value and state.same_as(other) for other, other_value in unique):
            unique.append((state, value))
    return unique


def _may_raise(statement: ast.stmt) -> bool:
    """Whether an exception may leave ``statement`` itself (not its nested blocks): it calls or raises. Computed
    once per statement and kept on the node, so it lives and dies with the tree."""
    return on_node(statement, "may_raise", lambda: _calls_or_raises(statement))


def _calls_or_raises(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Raise):
        return True
    headers: list[ast.AST]
    if isinstance(statement, (ast.If, ast.While)):
        headers = [statement.test]
    elif isinstance(statement, (ast.For, ast.AsyncFor)):
        headers = [statement.iter]
    elif isinstance(statement, (ast.With, ast.AsyncWith)):
        headers = [item.context_expr for item in statement.items]
    elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Try)):
        return False
    else:
        headers = [statement]
    return any(isinstance(node, ast.Call) for header in headers for node in ast.walk(header))


def _relevant(function: ast.AST, module: SourceModule) -> bool:
    return scan(module).relevant(function, module)


def _binding(function: ast.AST) -> str:
    """How a method binds its first parameter: "instance", "class" or "static" (by its decorators)."""
    for decorator in getattr(function, "decorator_list", ()):
        name = decorator.id if isinstance(decorator, ast.Name) else getattr(decorator, "attr", "")
        if name == "staticmethod":
            return "static"
        if name == "classmethod":
            return "class"
    return "instance"


def _functions(body: list[ast.stmt], cls: Optional[ast.ClassDef] = None) -> list[tuple[Any, Optional[ast.ClassDef]]]:
    """Every function, however nested, with the class it is a method of (None for plain functions)."""
    found: list[tuple[Any, Optional[ast.ClassDef]]] = []
    for statement in body:
        if isinstance(statement, _SIMPLE_STATEMENTS):
            continue
        if isinstance(statement, FunctionNode):
            found.append((statement, cls))
            found += _functions(statement.body, None)
        elif isinstance(statement, ast.ClassDef):
            found += _functions(statement.body, statement)
        else:
            for field_name in ("body", "orelse", "finalbody"):
                block = getattr(statement, field_name, None)
                if isinstance(block, list):
                    found += _functions(block, cls)
            for handler in getattr(statement, "handlers", ()):
                found += _functions(handler.body, cls)
            for case in getattr(statement, "cases", ()):
                found += _functions(case.body, cls)
    return found


def _first_param(function: ast.AST) -> Optional[str]:
    arguments = function.args  # type: ignore[attr-defined]
    params = [*arguments.posonlyargs, *arguments.args]
    return params[0].arg if params else None


def _method(cls: ast.ClassDef, name: str) -> Optional[ast.AST]:
    return next((s for s in cls.body if isinstance(s, FunctionNode) and s.name == name), None)


def _definitions(body: list[ast.stmt], kind: Any) -> list[Any]:
    """Every function or class definition, however nested, found by walking statements only (cheap)."""
    found = []
    pending = list(reversed(body))
    while pending:
        statement = pending.pop()
        if isinstance(statement, kind):
            found.append(statement)
        if isinstance(statement, _SIMPLE_STATEMENTS):
            continue
        inner: list[ast.stmt] = []
        for field_name in ("body", "orelse", "finalbody"):
            block = getattr(statement, field_name, None)
            if isinstance(block, list):
                inner.extend(block)
        for handler in getattr(statement, "handlers", ()):
            inner.extend(handler.body)
        for case in getattr(statement, "cases", ()):
            inner.extend(case.body)
        pending.extend(reversed(inner))
    return found


# Statements with no statements inside: nothing to look for in them.
_SIMPLE_STATEMENTS = (
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Expr,
    ast.Return,
    ast.Import,
    ast.ImportFrom,
    ast.Pass,
)
