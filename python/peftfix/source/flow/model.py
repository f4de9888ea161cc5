"""Abstract values, events and program states of the data-flow model.

An *object* stands for one runtime object (a model loaded at a given call, a tokenizer, a LoRA config...).
Models and tokenizers carry *histories*: the ordered events that happened to them along one path of the
program. A state maps each object to the set of histories it may have (one per path, merged at joins), so a
rule looking at a history looks at one concrete path: ``if resume: from_pretrained(...) else:
get_peft_model(...)`` never yields a history with both.

Because ``get_peft_model(m, cfg)`` and ``PeftModel.from_pretrained(m, path)`` inject LoRA layers into ``m`` in
place, their result is the *same* object as ``m``: wrapping is an event on the object, not a new object.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import libcst as cst

# A path cannot grow without bound in loops and branchy code: past this many histories per object the
# oldest extra ones are dropped (findings already reported stay reported).
MAX_HISTORIES = 32


class Kind(enum.Enum):
    MODEL = "model"  # a transformers model (wrapped or not); has histories
    TOKENIZER = "tokenizer"  # has histories
    PARAM = "param"  # a function parameter while summarising the function; has histories
    PEFT_CONFIG = "peft_config"  # LoraConfig & co; info holds the resolved arguments
    QUANT_CONFIG = "quant_config"  # BitsAndBytesConfig; info["quantized"]
    TRAINER = "trainer"  # info["models"]
    OPTIMIZER = "optimizer"  # info["models"]
    OUTPUT = "output"  # a forward pass result or anything computed from it (loss); info["models"]
    PARAMETERS = "parameters"  # model.parameters() and what is derived from it; info["models"]
    CONST = "const"  # a literal or a value known by a key (env var name); info["value"], info["key"]
    SEQUENCE = "sequence"  # a tuple/list literal; info["items"] (tuple of value sets), info["node"]
    FUNCTION = "function"  # a function defined in this file; info["node"]
    MODULE = "module"  # what an import binds; info["qualified"] ("transformers.AutoModel")


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


EMPTY: frozenset = frozenset()  # the value of an expression is the frozenset of objects it may evaluate to


class Ev(enum.Enum):
    ORIGIN_UNKNOWN = "origin-unknown"  # a model whose loading the file does not show
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


@dataclass(frozen=True, eq=False)
class Event:
    kind: Ev
    node: cst.CSTNode
    info: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.info.get(key, default)


WRAP_EVENTS = (Ev.GET_PEFT_MODEL, Ev.LOAD_PEFT, Ev.CREATE_PEFT)
UNWRAP_EVENTS = (Ev.MERGE, Ev.UNWRAP)


def last_since_unwrap(history: Iterable[Event], kinds: Iterable[Ev]) -> Optional[Event]:
    """The most recent event of ``kinds`` since the object was last a plain model (merged or unloaded)."""
    kinds = frozenset(kinds)
    found = None
    for event in history:
        if event.kind in kinds:
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


class State:
    """Variables (``env``) and the histories of every tracked object (``heap``) along the merged paths."""

    __slots__ = ("env", "heap")

    def __init__(self, env: Optional[dict] = None, heap: Optional[dict] = None):
        self.env: dict[str, frozenset] = env if env is not None else {}
        self.heap: dict[Obj, frozenset] = heap if heap is not None else {}

    def copy(self) -> State:
        return State(dict(self.env), dict(self.heap))

    def bind(self, name: str, value: frozenset) -> None:
        # Rebinding ``x`` forgets what was known of ``x.attr``.
        prefix = name + "."
        for key in [key for key in self.env if key.startswith(prefix)]:
            del self.env[key]
        self.env[name] = value

    def forget(self, name: str) -> None:
        self.bind(name, EMPTY)
        del self.env[name]

    def histories(self, obj: Obj) -> frozenset:
        return self.heap.get(obj, frozenset())

    @staticmethod
    def merge(states: Iterable[Optional[State]]) -> Optional[State]:
        live = [state for state in states if state is not None]
        if not live:
            return None
        if len(live) == 1:
            return live[0]
        env: dict[str, frozenset] = {}
        heap: dict[Obj, frozenset] = {}
        for state in live:
            for name, value in state.env.items():
                env[name] = env.get(name, EMPTY) | value
            for obj, histories in state.heap.items():
                heap[obj] = cap(heap.get(obj, frozenset()) | histories)
        return State(env, heap)


def cap(histories: frozenset) -> frozenset:
    if len(histories) <= MAX_HISTORIES:
        return histories
    return frozenset(sorted(histories, key=len)[:MAX_HISTORIES])
