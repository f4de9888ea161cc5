"""Abstract values, events and program states of the data-flow model.

An *object* stands for one runtime object (a model loaded at a given call, a tokenizer, a LoRA config...).
Models and tokenizers carry *histories*: the ordered events that happened to them along one path of the
program. A state maps variables to the objects they may hold (``env``) and each object to its histories
(``heap``). The interpreter keeps several states side by side, one per path (up to a bound), so facts
established together on one path stay together: the path that extends the tokenizer is the path that resizes.

Because ``get_peft_model(m, cfg)`` and ``PeftModel.from_pretrained(m, path)`` inject LoRA layers into ``m`` in
place, their result is the *same* object as ``m``: wrapping is an event on the object, not a new object.
"""

from __future__ import annotations

import ast
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from peftfix.source.notebook import cell_of_row, is_notebook

if TYPE_CHECKING:
    from peftfix.source.module import SourceModule

# A path cannot grow without bound in loops and branchy code: past this many histories per object the
# longest ones are dropped (findings already reported stay reported).
MAX_HISTORIES = 32
# Paths followed side by side at one program point; past this, the extra ones are merged into one.
MAX_PATHS = 8


class Kind(enum.Enum):
    MODEL = "model"  # a transformers model (wrapped or not); has histories
    TOKENIZER = "tokenizer"  # has histories
    PARAM = "param"  # a function parameter (or an attribute of one) while summarising the function; has histories
    PEFT_CONFIG = "peft_config"  # LoraConfig & co; info holds the resolved arguments
    QUANT_CONFIG = "quant_config"  # BitsAndBytesConfig; info["quantized"]
    TRAINER = "trainer"  # info["models"]
    OPTIMIZER = "optimizer"  # info["models"]
    OUTPUT = "output"  # a forward pass result or anything computed from it (loss); info["models"]
    PARAMETERS = "parameters"  # model.parameters() and what is derived from it; info["models"]
    CONST = "const"  # a literal or a value known by a key (env var name); info["value"], info["key"]
    SEQUENCE = "sequence"  # a tuple/list literal; info["items"] (tuple of value sets), info["node"]
    COUNT = "count"  # how many tokens `add_tokens` added; info["tokenizers"], info["event"]
    MAPPING = "mapping"  # a dict of known keys; info["items"] (key -> value set), info["nodes"] (key -> node)
    FUNCTION = "function"  # a function or method of the program; info["node"], info["module"], info["cls"]
    CLASS = "class"  # a class of the program; info["node"], info["module"]
    INSTANCE = "instance"  # an instance of a class of the program; info["cls"], info["module"], info["key"] (its
    #                        attributes live in the state's env under "<key>.<attribute>")
    MODULE = "module"  # what an import of a library binds; info["qualified"] ("transformers.AutoModel")
    PROJECT_MODULE = "project_module"  # an imported module of the checked project; info["module"]


HISTORY_KINDS = (Kind.MODEL, Kind.TOKENIZER, Kind.PARAM)
# Kinds whose objects are views of models (info["models"]).
MODEL_VIEW_KINDS = (Kind.TRAINER, Kind.OPTIMIZER, Kind.OUTPUT, Kind.PARAMETERS)


class Obj:
    """One abstract runtime object. Identity is the object itself."""

    __slots__ = ("info", "kind")

    def __init__(self, kind: Kind, **info: Any):
        self.kind = kind
        self.info = info

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Obj({self.kind.value}, {sorted(self.info)})"

    @property
    def models(self) -> frozenset[Obj]:
        return self.info.get("models", frozenset())


Value = frozenset  # the objects an expression may evaluate to
EMPTY: frozenset = frozenset()


class Ev(enum.Enum):
    ORIGIN_UNKNOWN = "origin-unknown"  # a model whose loading the program does not show
    PARAM_START = "param-start"  # a function parameter: what came before is the caller's
    CREATE_MODEL = "create-model"  # info: family, class_name, ref, construct, trust_remote_code, quantized
    CREATE_PEFT = "create-peft"  # AutoPeftModel*.from_pretrained; info: trainable, explicit_false, quantized
    CREATE_TOKENIZER = "create-tokenizer"  # info: path_key
    TOKENS_ADDED = "tokens-added"
    GET_PEFT_MODEL = "get-peft-model"  # info: configs (frozenset of PEFT_CONFIG objs), model_arg
    LOAD_PEFT = "load-peft"  # PeftModel.from_pretrained(m, path); info: trainable, explicit_false, path_key,
    #                          model_arg, tokenizers
    LOAD_ADAPTER = "load-adapter"
    ADD_ADAPTER = "add-adapter"
    SET_ADAPTER = "set-adapter"
    KBIT_PREP = "kbit-prep"
    MERGE = "merge"  # merge_and_unload(): the result is a plain model again
    UNWRAP = "unwrap"  # unload(): LoRA removed
    RESIZE = "resize"
    CAUSAL_USE = "causal-use"  # info: reason, explicit
    TRAIN = "train"  # the model's parameters are optimised here; info: via
    UNFREEZE = "unfreeze"  # requires_grad switched on by hand
    LINEAR_HELPER = "linear-helper"  # a Linear-name helper ran over the model; info: helper name
    # Calls on a function parameter whose meaning depends on what the caller passes (a trainer's .train()
    # trains, a model's .train() only switches mode); translated when the summary is applied.
    CALL_TRAIN = "call-train"
    CALL_STEP = "call-step"
    CALL_BACKWARD = "call-backward"
    PEFT_CONFIG = "peft-config"  # object-less: a LoraConfig & co was built; info: config (PEFT_CONFIG obj)
    # A branch taken on a parameter (`if isinstance(model, PeftModel)`): the summary's path holds only for caller
    # values that satisfy it. info: what ("peft", "none", "falsy"), expected (bool)
    ASSUME = "assume"


@dataclass(frozen=True, eq=False)
class Event:
    """Something that happened at ``node`` of ``module`` (identity is the event itself)."""

    kind: Ev
    node: ast.AST
    module: SourceModule
    info: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.info.get(key, default)

    @property
    def line(self) -> int:
        return int(getattr(self.node, "lineno", 1))

    def where(self, here: Optional[SourceModule] = None) -> str:
        """``line 12``, or ``model_utils.py:12`` when the event is in another file than ``here``."""
        if is_notebook(self.module.filename):  # the program of a notebook's cells: say which cell
            cell_row = cell_of_row(self.module.source, self.line)
            if cell_row is not None:
                where = f"cell {cell_row[0]}, line {cell_row[1]}"
                return f"{self.module.filename}, {where}" if here is not None and self.module is not here else where
        if here is not None and self.module is not here:
            return f"{self.module.filename}:{self.line}"
        return f"line {self.line}"


WRAP_EVENTS = (Ev.GET_PEFT_MODEL, Ev.LOAD_PEFT, Ev.CREATE_PEFT)
UNWRAP_EVENTS = (Ev.MERGE, Ev.UNWRAP)
KNOWN_ORIGINS = (Ev.CREATE_MODEL, Ev.CREATE_PEFT, Ev.CREATE_TOKENIZER)


def last_since_unwrap(history: Iterable[Event], kinds: Iterable[Ev]) -> Optional[Event]:
    """The most recent event of ``kinds`` since the object was last a plain model (merged or unloaded)."""
    wanted = frozenset(kinds)
    found = None
    for event in history:
        if event.kind in wanted:
            found = event
        elif event.kind in UNWRAP_EVENTS:
            found = None
    return found


def last_wrap(history: Iterable[Event]) -> Optional[Event]:
    """The most recent event that made the object a PeftModel along this path, if it still is one."""
    return last_since_unwrap(history, WRAP_EVENTS)


def creation(history: Iterable[Event]) -> Optional[Event]:
    for event in history:
        if event.kind in (Ev.CREATE_MODEL, Ev.CREATE_PEFT):
            return event
    return None


def is_peft_model(history: tuple) -> Optional[bool]:
    """Whether the object is a PeftModel at the end of ``history``: True, False, or None when unknown (its
    origin is not shown and nothing since made it one)."""
    if last_wrap(history) is not None:
        return True
    if history and history[0].kind in KNOWN_ORIGINS:
        return False
    if any(event.kind in UNWRAP_EVENTS for event in history):
        return False
    return None


def holds(assumption: Event, obj: Obj, history: Optional[tuple]) -> bool:
    """Whether a caller's object (with ``history``, when it has histories) satisfies a branch assumption."""
    what, expected = assumption.get("what"), assumption.get("expected")
    if what == "eq":
        key = obj.info.get("key")
        if obj.kind is Kind.CONST and (key is None or str(key).startswith("str:")):
            return (obj.info.get("value") == assumption.get("value")) == expected
        return True
    if what == "count":
        return True
    if what in ("peft", "peft-or-injected"):
        if obj.kind in (Kind.MODEL, Kind.TOKENIZER) and history is not None:
            return is_peft_model(history) in (expected, None)
        return obj.kind is Kind.PARAM or not expected
    if obj.kind is Kind.CONST:
        value = obj.info.get("value")
        empty = (not value) if what == "falsy" else value is None
        return empty == expected
    if obj.kind in (Kind.MODEL, Kind.TOKENIZER) and history is not None:
        unknown = not history or history[0].kind is Ev.ORIGIN_UNKNOWN
        return unknown or not expected
    return True


# In a variable's key, what follows marks a remembered test outcome (see flow.guards), not an attribute.
FACT_MARK = ".?"


class Env(dict):
    """Variables to values. It counts, per name, the entries of its attributes (``self.model``), so that
    rebinding a name forgets them without scanning every variable: binding stays constant-time in a module of
    25,000 assignments."""

    __slots__ = ("roots",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.roots: dict[str, int] = {}
        for key in self:
            self._count(key, 1)

    def _count(self, key: str, delta: int) -> None:
        dot = key.find(".")
        if dot > 0:
            root = key[:dot]
            self.roots[root] = self.roots.get(root, 0) + delta

    def __setitem__(self, key: str, value: frozenset) -> None:
        if key not in self:
            self._count(key, 1)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._count(key, -1)

    def copy(self) -> Env:
        copied = Env.__new__(Env)
        dict.update(copied, self)
        copied.roots = dict(self.roots)
        return copied

    def attributes_of(self, name: str) -> list[str]:
        """The keys of ``name``'s attributes (``name.x``, ``name.x.y``)."""
        root = name.split(".", 1)[0]
        if not self.roots.get(root):
            return []
        prefix = name + "."
        return [key for key in self if key.startswith(prefix)]


class State:
    """One path (or a few merged ones): variables (``env``) and the histories of every tracked object (``heap``)."""

    __slots__ = ("ended", "env", "heap")

    def __init__(self, env: Optional[dict] = None, heap: Optional[dict] = None):
        self.env: Env = env if isinstance(env, Env) else Env(env or {})
        self.heap: dict[Obj, frozenset] = heap if heap is not None else {}
        self.ended = False  # the program exits on this path (sys.exit)

    def copy(self) -> State:
        return State(self.env.copy(), dict(self.heap))

    def bind(self, name: str, value: frozenset) -> None:
        # Rebinding ``x`` forgets what was known of ``x.attr``.
        for key in self.env.attributes_of(name):
            del self.env[key]
        self.env[name] = value

    def forget(self, name: str) -> None:
        for key in self.env.attributes_of(name):
            del self.env[key]
        if name in self.env:
            del self.env[name]

    def histories(self, obj: Obj) -> frozenset:
        return self.heap.get(obj, frozenset())

    def same_as(self, other: State) -> bool:
        return self is other or (
            self.ended == other.ended
            and len(self.env) == len(other.env)
            and self.env == other.env
            and self.heap == other.heap
        )

    @staticmethod
    def merge(states: Iterable[Optional[State]]) -> Optional[State]:
        live = [state for state in states if state is not None]
        if not live:
            return None
        if len(live) == 1:
            return live[0]
        first = live[0]
        env: dict[str, frozenset] = dict(first.env)
        heap: dict[Obj, frozenset] = dict(first.heap)
        for state in live[1:]:
            for name, value in state.env.items():
                known = env.get(name)
                if known is not value:  # most variables hold the same value on every path: nothing to do
                    env[name] = value if known is None else known | value
            for obj, histories in state.heap.items():
                known = heap.get(obj)
                if known is not histories:
                    heap[obj] = histories if known is None else cap(known | histories)
        # A remembered test outcome holds after the join only if every path remembers it.
        for key in [key for key in env if FACT_MARK in key]:
            if any(key not in state.env for state in live):
                del env[key]
        return State(env, heap)


def cap(histories: frozenset) -> frozenset:
    if len(histories) <= MAX_HISTORIES:
        return histories
    return frozenset(sorted(histories, key=len)[:MAX_HISTORIES])


def bounded(paths: list[State]) -> list[State]:
    """The paths, those with the same histories joined, at most ``MAX_PATHS`` of them.

    Paths are kept apart for what happened to the tracked objects (their histories): that is where facts must
    stay together. Paths that differ only in plain variables (a learning rate set in a branch) are joined, so
    a branchy script does not multiply its paths for nothing.
    """
    if len(paths) <= 1:
        return paths
    groups: list[list[State]] = []
    buckets: dict[tuple[int, bool], list[list[State]]] = {}
    for state in paths:
        bucket = buckets.setdefault((len(state.heap), state.ended), [])
        for group in bucket:
            if group[0].heap == state.heap:
                group.append(state)
                break
        else:
            group = [state]
            bucket.append(group)
            groups.append(group)
    joined = [group[0] if len(group) == 1 else _join(group) for group in groups]
    if len(joined) <= MAX_PATHS:
        return joined
    merged = State.merge(joined[MAX_PATHS - 1 :])
    assert merged is not None  # merging live states gives a state
    return [*joined[: MAX_PATHS - 1], merged]


def _join(group: list[State]) -> State:
    merged = State.merge(group)
    assert merged is not None
    merged.ended = group[0].ended
    return merged
