"""What library calls do to the data-flow model, read from the library model (``source/library.toml``).

Callees are recognised by their resolved qualified names (``transformers.AutoModel.from_pretrained``,
``peft.get_peft_model``), never by text; methods by the kind of object they are called on.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from peftfix.source.adapter_config import adapter_task_type
from peftfix.source.flow.evaluator import Evaluator
from peftfix.source.flow.library import Argument, CallEntry, library
from peftfix.source.flow.model import EMPTY, HISTORY_KINDS, Ev, Event, Kind, Obj, State, cap
from peftfix.source.flow.names import dotted_name, on_node

LINEAR_HELPER_NAME = re.compile(
    r"(find|get|list|collect|all)\w*linear|linear\w*(name|module|layer|target)", re.IGNORECASE
)
QUANTIZATION_KEYWORDS = ("load_in_4bit", "load_in_8bit")


def string_value(node: Optional[ast.AST]) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def literal_bool(node: Optional[ast.AST]) -> Optional[bool]:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


@dataclass
class CallArguments:
    """A call's arguments with their evaluated values (positions before any ``*args`` only)."""

    call: ast.Call
    positional: list[tuple[ast.expr, frozenset]] = field(default_factory=list)
    keywords: dict[str, tuple[ast.expr, frozenset]] = field(default_factory=dict)
    spreads: list[frozenset] = field(default_factory=list)  # the values of `**kwargs`

    def node(self, argument: Optional[Argument]) -> Optional[ast.expr]:
        found = self._find(argument)
        return found[0] if found is not None else None

    def value(self, argument: Optional[Argument]) -> frozenset:
        found = self._find(argument)
        return found[1] if found is not None else EMPTY

    def _find(self, argument: Optional[Argument]) -> Optional[tuple[ast.expr, frozenset]]:
        if argument is None:
            return None
        position, keyword = argument
        if keyword in self.keywords:
            return self.keywords[keyword]
        if 0 <= position < len(self.positional):
            return self.positional[position]
        return None

    def all_values(self) -> list[frozenset]:
        return [value for _, value in self.positional] + [value for _, value in self.keywords.values()]

    def spread_items(self, key: str) -> list[tuple[Optional[ast.AST], frozenset]]:
        """What ``**mapping`` arguments pass as ``key`` (from mappings whose keys the flow knows)."""
        found = []
        for value in self.spreads:
            for obj in value:
                if obj.kind is Kind.MAPPING and key in obj.info["items"]:
                    found.append((obj.info["nodes"].get(key), obj.info["items"][key]))
        return found


class CallSemantics:
    """What library calls do to the data-flow model, evaluated through the interpreter's :class:`Evaluator`."""

    def __init__(self, interpreter: Evaluator):
        self.interp = interpreter
        self.library = library()

    def event(self, kind: Ev, node: ast.AST, **info: Any) -> Event:
        return Event(kind, node, self.interp.module, info)

    # ------------------------------------------------------------------------------------------ dispatch

    def evaluate(self, call: ast.Call, state: State) -> frozenset:
        func = call.func
        qualified = self.interp.qualified(func, state)
        receiver = EMPTY
        callee = EMPTY
        if qualified is None:
            if isinstance(func, ast.Attribute):
                receiver = self.interp.eval(func.value, state)
            else:
                callee = self.interp.eval(func, state)
        arguments = self.arguments(call, state)
        if qualified is None:
            qualified = self._common_library_callee(func, receiver if isinstance(func, ast.Attribute) else callee)
        if qualified is not None:
            return self.library_call(call, qualified, arguments, state)
        if isinstance(func, ast.Attribute):
            callee = frozenset(obj for obj in self.interp.attribute_values(receiver, func.attr))
        functions = [obj for obj in callee if obj.kind is Kind.FUNCTION]
        classes = [obj for obj in callee if obj.kind is Kind.CLASS]
        if self._names_linear_helper(call):
            self._linear_helper(call, arguments, state)
        if functions or classes:
            result = EMPTY
            for function in functions:
                result |= self.interp.call_function(call, function, receiver, arguments, state)
            for cls in classes:
                result |= self.interp.construct(call, cls, arguments, state)
            return result
        if (
            isinstance(func, ast.Attribute)
            and not receiver
            and isinstance(func.value, ast.Name)
            and self.library.is_unresolved_model_loader(func.value.id, func.attr)
        ):
            entry = CallEntry("load-model", (), (), {"family": None})
            return self.effect_load_model(call, f"{func.value.id}.{func.attr}", entry, arguments, state)
        if isinstance(func, ast.Attribute) and func.attr in self.library.methods and not receiver:
            receiver = self.materialize(func.value, state)
        if receiver and isinstance(func, ast.Attribute):
            return self.method_call(call, func.attr, receiver, arguments, state)
        models = frozenset(obj for obj in callee if obj.kind in (Kind.MODEL, Kind.PARAM))
        if models:  # model(...) is a forward pass
            return self.forward(call, models, state)
        # An unknown call: what it computes from a loss or from parameters is still tied to that model.
        views = EMPTY
        for value in arguments.all_values():
            views |= frozenset(obj for obj in value if obj.kind in (Kind.OUTPUT, Kind.PARAMETERS))
        if isinstance(func, ast.Attribute) and func.attr == "backward":  # accelerator.backward(loss)
            self._train_from_outputs(call, views, state)
        return views

    def _common_library_callee(self, func: ast.AST, value: frozenset) -> Optional[str]:
        """One of several library callees a variable may hold, when they all mean the same thing here."""
        if not value or any(obj.kind is not Kind.MODULE for obj in value):
            return None
        names = sorted(obj.info["qualified"] for obj in value)
        if isinstance(func, ast.Attribute):
            names = [f"{name}.{func.attr}" for name in names]
        entries = [self.library.call(name) for name in names]
        if any(entry is None for entry in entries):
            return None
        kinds = {(entry.effect, entry.get("family"), entry.get("construct")) for entry in entries if entry}
        if len(kinds) == 1:
            return names[0]
        # Model classes that differ in their head: the effect is known, which head it is is not.
        if {kind[0] for kind in kinds} == {"load-model"} and len({kind[2] for kind in kinds}) == 1:
            causal = [
                name for name, entry in zip(names, entries, strict=True) if entry and entry.get("family") == "causal"
            ]
            return causal[0] if causal else None
        return None

    def arguments(self, call: ast.Call, state: State) -> CallArguments:
        arguments = CallArguments(call)
        starred = False
        for arg in call.args:
            value = self.interp.eval(arg.value if isinstance(arg, ast.Starred) else arg, state)
            starred = starred or isinstance(arg, ast.Starred)
            if not starred:
                arguments.positional.append((arg, value))
        for keyword in call.keywords:
            value = self.interp.eval(keyword.value, state)
            if keyword.arg is None:
                arguments.spreads.append(value)
            else:
                arguments.keywords[keyword.arg] = (keyword.value, value)
        return arguments

    def library_call(self, call: ast.Call, qualified: str, arguments: CallArguments, state: State) -> frozenset:
        entry = self.library.call(qualified)
        if entry is None:
            if LINEAR_HELPER_NAME.search(qualified.rsplit(".", 1)[-1]):
                self._linear_helper(call, arguments, state)
            return EMPTY
        handler = getattr(self, "effect_" + entry.effect.replace("-", "_"))
        return handler(call, qualified, entry, arguments, state)

    # ------------------------------------------------------------------------------------- constructors

    def effect_load_model(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        construct = entry.get("construct", "from_pretrained")
        parts = qualified.split(".")
        class_name = parts[-1] if construct == "init" else parts[-2]
        func = call.func
        # The class for `AutoModel.from_pretrained(...)`, else the callee itself.
        reference = func.value if construct != "init" and isinstance(func, ast.Attribute) else func
        trusts: list[tuple[Optional[ast.AST], frozenset]] = (
            [arguments.keywords["trust_remote_code"]] if "trust_remote_code" in arguments.keywords else []
        )
        trusts += arguments.spread_items("trust_remote_code")
        path = arguments.node((0, "pretrained_model_name_or_path")) if construct != "init" else None
        path_key = self.value_key(path, arguments.value((0, "pretrained_model_name_or_path"))) if path else None
        if path_key is None and construct != "init":
            name_node = arguments.node((-1, "model_name"))  # unsloth's spelling
            path_key = self.value_key(name_node, arguments.value((-1, "model_name"))) if name_node else None
        event = self.event(
            Ev.CREATE_MODEL,
            call,
            family=entry.get("family"),
            class_name=class_name,
            ref=reference,
            construct=construct,
            trust_remote_code=any(
                (literal_bool(node) if node is not None else self._const_bool(value)) is not False
                for node, value in trusts
            ),
            quantized=self.quantized(arguments, state, bool(entry.get("quantized_default", False)))
            or self.names_prequantized(arguments.value((0, "pretrained_model_name_or_path")) if path else EMPTY),
            patches_trainers=bool(entry.get("patches_trainers", False)),
            path_key=path_key,
        )
        model = self.interp.new_object(Kind.MODEL, state, event)
        returns = entry.get("returns")
        if isinstance(returns, list):
            items = []
            for item in returns:
                if item == "model":
                    items.append(frozenset([model]))
                elif item == "tokenizer":
                    tokenizer_event = self.event(Ev.CREATE_TOKENIZER, call, path_key=None)
                    items.append(frozenset([self.interp.new_object(Kind.TOKENIZER, state, tokenizer_event)]))
                else:
                    items.append(EMPTY)
            return frozenset([Obj(Kind.SEQUENCE, items=tuple(items), node=call)])
        return frozenset([model])

    def effect_create_peft(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        info = self.trainable_info(arguments, entry)
        info["quantized"] = self.quantized(arguments, state, False)
        obj = self.interp.new_object(Kind.MODEL, state, self.event(Ev.CREATE_PEFT, call, **info))
        return frozenset([obj])

    def effect_load_tokenizer(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        path = arguments.node(entry.argument("path"))
        key = self.value_key(path, arguments.value(entry.argument("path"))) if path is not None else None
        event = self.event(Ev.CREATE_TOKENIZER, call, path_key=key)
        return frozenset([self.interp.new_object(Kind.TOKENIZER, state, event)])

    def effect_quant_config(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        flags = [literal_bool(node) for name, (node, _) in arguments.keywords.items() if name in entry.get("flags", ())]
        # Unknown flag values count as quantized: the config exists to quantize.
        quantized = any(flag is not False for flag in flags)
        return frozenset([Obj(Kind.QUANT_CONFIG, quantized=quantized, node=call)])

    def quantized(self, arguments: CallArguments, state: State, default: bool) -> bool:
        """Whether a loader call quantizes: a true (or computed) `load_in_4bit`/`load_in_8bit`, or a
        `quantization_config` that is not None, passed directly or through `**kwargs` of known keys."""
        explicit = False
        for name in QUANTIZATION_KEYWORDS:
            sources: list[tuple[Optional[ast.AST], frozenset]] = (
                [arguments.keywords[name]] if name in arguments.keywords else []
            )
            sources += arguments.spread_items(name)
            for node, value in sources:
                explicit = True
                flag = literal_bool(node)
                if flag is None:
                    flag = self._const_bool(value)
                if flag is not False:
                    return True
        configs: list[tuple[Optional[ast.AST], frozenset]] = (
            [arguments.keywords["quantization_config"]] if "quantization_config" in arguments.keywords else []
        )
        configs += arguments.spread_items("quantization_config")
        for node, value in configs:
            if (isinstance(node, ast.Constant) and node.value is None) or self._is_none_value(value):
                continue
            known = [obj for obj in value if obj.kind is Kind.QUANT_CONFIG]
            if not known or any(config.info["quantized"] for config in known):
                return True
        return default and not explicit

    def names_prequantized(self, value: frozenset) -> bool:
        """The checkpoint loaded is, by every name it may have, one published already quantized."""
        names = [obj.info.get("value") for obj in value if obj.kind is Kind.CONST]
        return bool(names) and all(isinstance(name, str) and self.library.is_prequantized(name) for name in names)

    @staticmethod
    def _is_none_value(value: frozenset) -> bool:
        return bool(value) and all(obj.kind is Kind.CONST and obj.info.get("value") is None for obj in value)

    @staticmethod
    def _const_bool(value: frozenset) -> Optional[bool]:
        flags = {obj.info.get("value") for obj in value if obj.kind is Kind.CONST}
        if len(flags) == 1 and len(value) == 1:
            (flag,) = flags
            return flag if isinstance(flag, bool) else None
        return None

    def effect_peft_config(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        task = arguments.node(entry.argument("task"))
        rank = arguments.node(entry.argument("rank"))
        targets = arguments.node(entry.argument("targets"))
        config = Obj(
            Kind.PEFT_CONFIG,
            class_name=qualified.rsplit(".", 1)[-1],
            node=call,
            task_type=self.task_type(task, arguments.value(entry.argument("task")), state) if task else None,
            rank=self.int_value(arguments.value(entry.argument("rank"))) if rank is not None else None,
        )
        if targets is not None:
            literal = self.literal_sequence(targets, arguments.value(entry.argument("targets")))
            if literal is not None:
                config.info.update(targets=literal[0], targets_module=literal[1])
        self.interp.emit(self.event(Ev.PEFT_CONFIG, call, config=config))
        return frozenset([config])

    def effect_trainer(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        models = frozenset(obj for obj in arguments.value(entry.argument("model")) if obj.kind in HISTORY_KINDS)
        if not models:
            model_node = arguments.node(entry.argument("model"))
            models = self.materialize(model_node, state) if model_node is not None else EMPTY
        class_name = qualified.rsplit(".", 1)[-1]
        explicit = bool(entry.get("causal", False))
        self.interp.apply(models, self.event(Ev.CAUSAL_USE, call, reason=f"`{class_name}`", explicit=explicit), state)
        peft_keyword = entry.get("peft_config")
        if peft_keyword and peft_keyword in arguments.keywords:
            node, value = arguments.keywords[peft_keyword]
            nones = [o for o in value if o.kind is Kind.CONST and o.info.get("value") is None]
            surely_none = (isinstance(node, ast.Constant) and node.value is None) or (
                value and len(nones) == len(value)
            )
            if not surely_none:
                configs = frozenset(o for o in value if o.kind is Kind.PEFT_CONFIG)
                wrap = self.event(Ev.GET_PEFT_MODEL, call, configs=configs, model_arg=None, by_trainer=class_name)
                # A config that may be None (a helper returning None when LoRA is off) wraps on some runs only.
                unwrapped = {obj: state.heap.get(obj, frozenset()) for obj in models} if nones else {}
                self.interp.apply(models, wrap, state)
                for obj, histories in unwrapped.items():
                    state.heap[obj] = cap(state.heap.get(obj, frozenset()) | histories)
        return frozenset([Obj(Kind.TRAINER, models=models, node=call)])

    def effect_optimizer(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        models = EMPTY
        for obj in arguments.value(entry.argument("params")):
            if obj.kind is Kind.PARAMETERS:
                models |= obj.models
            elif obj.kind in HISTORY_KINDS:
                models |= frozenset([obj])
        return frozenset([Obj(Kind.OPTIMIZER, models=models)])

    def effect_env_lookup(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        name = string_value(arguments.node(entry.argument("name")))
        if name is None:
            return EMPTY
        fallback = string_value(arguments.node(entry.argument("default")))
        return self.interp.const(call, fallback, f"env:{name}")

    def effect_identity(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        return arguments.value(entry.argument("model"))

    def effect_copy(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        return self.copies(arguments.value(entry.argument("model")), state)

    @staticmethod
    def copies(values: frozenset, state: State) -> frozenset:
        """New objects with the histories of ``values`` so far (what happens to one no longer happens to both)."""
        copies = []
        for obj in values:
            if obj.kind in HISTORY_KINDS:
                copy = Obj(obj.kind, **obj.info)
                state.heap[copy] = state.heap.get(obj, frozenset([()]))
                copies.append(copy)
            else:
                copies.append(obj)
        return frozenset(copies)

    def effect_exit(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        self.interp.end_path(state)
        return EMPTY

    # ------------------------------------------------------------------------------------------ peft

    def effect_wrap(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        models = self.model_argument(arguments, entry.argument("model"), state)
        configs = frozenset(o for o in arguments.value(entry.argument("config")) if o.kind is Kind.PEFT_CONFIG)
        not_in_place = set(entry.get("not_in_place", ()))
        if configs and all(config.info.get("class_name") in not_in_place for config in configs):
            models = self.copies(models, state)  # the result wraps the base; the base itself is unchanged
        parts = qualified.split(".")
        callee = ".".join(parts[-2:]) if len(parts) > 2 and parts[-2][:1].isupper() else parts[-1]
        event = self.event(
            Ev.GET_PEFT_MODEL,
            call,
            configs=configs,
            model_arg=arguments.node(entry.argument("model")),
            callee=callee,
            bound_to=self.interp.assigned_names(call),
        )
        self.interp.apply(models, event, state)
        return models

    def effect_load_adapter(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        models = self.model_argument(arguments, entry.argument("model"), state)
        path = arguments.node(entry.argument("path"))
        path_value = arguments.value(entry.argument("path"))
        info = self.trainable_info(arguments, entry)
        info.update(
            adapter_task=self.adapter_task(path_value) if path is not None else None,
            path_key=self.value_key(path, path_value) if path is not None else None,
            model_arg=arguments.node(entry.argument("model")),
            tokenizers=self.tokenizers_in_scope(state),
            bound_to=self.interp.assigned_names(call),
        )
        self.interp.apply(models, self.event(Ev.LOAD_PEFT, call, **info), state)
        return models

    def effect_kbit_prep(
        self, call: ast.Call, qualified: str, entry: CallEntry, arguments: CallArguments, state: State
    ) -> frozenset:
        models = self.model_argument(arguments, entry.argument("model"), state)
        self.interp.apply(models, self.event(Ev.KBIT_PREP, call), state)
        return models

    def adapter_task(self, value: frozenset) -> Optional[str]:
        """The ``task_type`` of the adapter at a path when it is a local directory written in the file."""
        paths = {obj.info.get("value") for obj in value if obj.kind is Kind.CONST}
        if len(paths) != 1:
            return None
        (path,) = paths
        return adapter_task_type(path, self.interp.module.filename) if isinstance(path, str) else None

    def trainable_info(self, arguments: CallArguments, entry: CallEntry) -> dict:
        keyword = entry.get("trainable", "is_trainable")
        sources: list[tuple[Optional[ast.AST], frozenset]] = (
            [arguments.keywords[keyword]] if keyword in arguments.keywords else []
        )
        sources += arguments.spread_items(keyword)
        if not sources:
            # `**kwargs` the flow cannot see into may well carry is_trainable=True.
            opaque = any(not value or any(obj.kind is not Kind.MAPPING for obj in value) for value in arguments.spreads)
            return {"trainable": opaque, "explicit_false": False}
        flags = [literal_bool(node) if node is not None else self._const_bool(value) for node, value in sources]
        # A computed flag may be True: only a literal False (or none at all) freezes for sure.
        explicit_false = all(flag is False for flag in flags)
        return {"trainable": not explicit_false, "explicit_false": explicit_false}

    @staticmethod
    def tokenizers_in_scope(state: State) -> tuple:
        found = []
        for name, value in state.env.items():
            for obj in value:
                if obj.kind is Kind.TOKENIZER:
                    found.append((name, obj, state.heap.get(obj, frozenset())))
        return tuple(found)

    # ------------------------------------------------------------------------------------------ methods

    def method_call(
        self, call: ast.Call, method: str, receiver: frozenset, arguments: CallArguments, state: State
    ) -> frozenset:
        result = EMPTY
        models = frozenset(obj for obj in receiver if obj.kind in (Kind.MODEL, Kind.PARAM))
        if models:
            result |= self.model_method(call, method, models, arguments, state)
        tokenizers = frozenset(obj for obj in receiver if obj.kind is Kind.TOKENIZER)
        tokenizer_method = self.library.tokenizer_methods.get(method)
        if tokenizers and tokenizer_method is not None:
            added = self.event(Ev.TOKENS_ADDED, call, method=method)
            self.interp.apply(tokenizers, added, state)
            result |= frozenset([Obj(Kind.COUNT, tokenizers=tokenizers, event=added)])
        params = frozenset(obj for obj in receiver if obj.kind is Kind.PARAM)
        for obj in receiver:
            if obj.kind is Kind.TRAINER and method == "train":
                self.interp.apply(obj.models, self.event(Ev.TRAIN, call, via="`trainer.train()`"), state)
            elif obj.kind is Kind.OPTIMIZER and method == "step":
                self.interp.apply(obj.models, self.event(Ev.TRAIN, call, via="`optimizer.step()`"), state)
            elif obj.kind is Kind.OUTPUT and method == "backward":
                self.interp.apply(obj.models, self.event(Ev.TRAIN, call, via="`.backward()`"), state)
            elif obj.kind is Kind.PARAMETERS and method == "requires_grad_" and self._switches_on(arguments):
                self.interp.apply(obj.models, self.event(Ev.UNFREEZE, call), state)
            elif obj.kind in (Kind.OUTPUT, Kind.PARAMETERS):
                result |= frozenset([obj])
        deferred = {"train": Ev.CALL_TRAIN, "step": Ev.CALL_STEP, "backward": Ev.CALL_BACKWARD}.get(method)
        if params and deferred is not None:
            self.interp.apply(params, self.event(deferred, call, via=f"`.{method}()`"), state)
        if method == "backward":
            outputs = EMPTY
            for value in arguments.all_values():
                outputs |= frozenset(obj for obj in value if obj.kind is Kind.OUTPUT)
            self._train_from_outputs(call, outputs, state)
        return result

    def model_method(
        self, call: ast.Call, method: str, models: frozenset, arguments: CallArguments, state: State
    ) -> frozenset:
        spec = self.library.methods.get(method)
        if spec is None:
            if LINEAR_HELPER_NAME.search(method):
                self.interp.apply(models, self.event(Ev.LINEAR_HELPER, call, helper=method), state)
            return EMPTY
        event = spec.get("event")
        simple = {
            "merge": Ev.MERGE,
            "unwrap": Ev.UNWRAP,
            "add-adapter": Ev.ADD_ADAPTER,
            "set-adapter": Ev.SET_ADAPTER,
            "resize": Ev.RESIZE,
        }
        if event in simple:
            self.interp.apply(models, self.event(simple[event], call), state)
        elif event == "load-adapter-method":
            name = arguments.node(_argument(spec.get("adapter_name")))
            self.interp.apply(models, self.event(Ev.LOAD_ADAPTER, call, adapter_name=string_value(name)), state)
        elif event == "causal-use":
            self.interp.apply(models, self.event(Ev.CAUSAL_USE, call, reason=spec.get("reason"), explicit=True), state)
        elif event == "unfreeze" and self._switches_on(arguments):
            self.interp.apply(models, self.event(Ev.UNFREEZE, call), state)
        returns = spec.get("returns")
        if returns == "self":
            return models
        if returns == "parameters":
            return frozenset([Obj(Kind.PARAMETERS, models=models)])
        if returns == "output":
            return self.forward(call, models, state)
        return EMPTY

    def forward(self, call: ast.Call, models: frozenset, state: State) -> frozenset:
        if any(keyword.arg == "labels" for keyword in call.keywords):
            event = self.event(Ev.CAUSAL_USE, call, reason="`labels=` in the forward call", explicit=True)
            self.interp.apply(models, event, state)
        return frozenset([Obj(Kind.OUTPUT, models=models)])

    def requires_grad_assigned(self, target: ast.Attribute, state: State) -> None:
        """``p.requires_grad = True`` over a model's parameters unfreezes that model."""
        for obj in self.interp.eval(target.value, state):
            if obj.kind is Kind.PARAMETERS:
                self.interp.apply(obj.models, self.event(Ev.UNFREEZE, target), state)

    def subscript(self, node: ast.Subscript, base: frozenset, state: State) -> frozenset:
        result = frozenset(obj for obj in base if obj.kind in (Kind.OUTPUT, Kind.PARAMETERS))
        index = node.slice
        if isinstance(index, ast.Constant) and isinstance(index.value, int) and not isinstance(index.value, bool):
            position = index.value
            for obj in base:
                if obj.kind is Kind.SEQUENCE and -len(obj.info["items"]) <= position < len(obj.info["items"]):
                    result |= obj.info["items"][position]
        key = string_value(index)
        if key is not None:
            for obj in base:
                if obj.kind is Kind.MAPPING and key in obj.info["items"]:
                    result |= obj.info["items"][key]
        elif not isinstance(index, ast.Constant):
            for obj in base:
                if obj.kind is Kind.MAPPING:  # an unknown key: any of the values
                    for item in obj.info["items"].values():
                        result |= item
            if self.interp.qualified(node.value, state) == "os.environ":
                return self.interp.const(node, None, f"env:{key}")
        return result

    # ------------------------------------------------------------------------------------------ helpers

    def model_argument(self, arguments: CallArguments, argument: Optional[Argument], state: State) -> frozenset:
        """The models passed as ``argument``; a plain variable the file never showed being loaded still holds
        *some* model, so it gets one (of unknown origin)."""
        node = arguments.node(argument)
        if node is None:
            return EMPTY
        value = arguments.value(argument)
        models = frozenset(obj for obj in value if obj.kind in HISTORY_KINDS)
        for obj in value:
            if obj.kind is Kind.SEQUENCE and obj.info["items"]:  # `model = FastLanguageModel.from_pretrained(...)`
                models |= frozenset(item for item in obj.info["items"][0] if item.kind in HISTORY_KINDS)
        return models or self.materialize(node, state)

    def materialize(self, node: ast.AST, state: State) -> frozenset:
        """A model of unknown origin for a variable that surely holds one (none if ``node`` is no variable)."""
        name = dotted_name(node)
        if name is None or state.env.get(name):
            return EMPTY
        obj = self.interp.new_object(Kind.MODEL, state, self.event(Ev.ORIGIN_UNKNOWN, node))
        state.bind(name, frozenset([obj]))
        return frozenset([obj])

    @staticmethod
    def _names_linear_helper(call: ast.Call) -> bool:
        """`find_all_linear_names(model)`, `get_linear_modules(model)`: a helper that lists Linear layer names
        (not one that converts layers, like `convert_lora_to_linear`)."""
        func = call.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return on_node(call, "linear_helper", lambda: LINEAR_HELPER_NAME.search(name) is not None)

    def _linear_helper(self, call: ast.Call, arguments: CallArguments, state: State) -> None:
        models = EMPTY
        for value in arguments.all_values():
            models |= frozenset(obj for obj in value if obj.kind in (Kind.MODEL, Kind.PARAM))
        helper = self.interp.module.text_of(call.func)
        self.interp.apply(models, self.event(Ev.LINEAR_HELPER, call, helper=helper), state)

    def _train_from_outputs(self, call: ast.Call, outputs: frozenset, state: State) -> None:
        for obj in outputs:
            if obj.kind is Kind.OUTPUT:
                self.interp.apply(obj.models, self.event(Ev.TRAIN, call, via="`.backward()`"), state)

    @staticmethod
    def _switches_on(arguments: CallArguments) -> bool:
        node = arguments.node((0, "requires_grad"))
        return node is None or literal_bool(node) is not False

    def value_key(self, node: ast.AST, value: frozenset) -> Optional[str]:
        """A key that is equal for two expressions that surely hold the same path. An option with a fallback
        (`a.tokenizer or a.model`, `a.model if a.tokenizer is None else a.tokenizer`) is keyed by its fallback: the
        path taken when the option is not given."""
        fallback = default_operand(node)
        if fallback is not None:
            name = dotted_name(fallback)
            return f"name:{name}" if name is not None else None
        consts = [obj for obj in value if obj.kind is Kind.CONST and obj.info.get("key")]
        if len(consts) == 1:
            return str(consts[0].info["key"])
        name = dotted_name(node)
        if name is not None and not consts:
            return f"name:{name}"
        return None

    @staticmethod
    def int_value(value: frozenset) -> Optional[int]:
        values = {obj.info.get("value") for obj in value if obj.kind is Kind.CONST}
        if len(values) == 1:
            (found,) = values
            if isinstance(found, int) and not isinstance(found, bool):
                return found
        return None

    def task_type(self, node: ast.AST, value: frozenset, state: State) -> Optional[str]:
        if isinstance(node, ast.Attribute):
            owner = self.interp.qualified(node.value, state)
            if owner is not None and owner.startswith("peft.") and owner.endswith(".TaskType"):
                return node.attr
        values = {obj.info.get("value") for obj in value if obj.kind is Kind.CONST}
        if len(values) == 1:
            (found,) = values
            return found if isinstance(found, str) else None
        return None

    def literal_sequence(self, node: ast.AST, value: frozenset) -> Optional[tuple[ast.AST, Any]]:
        """The list/tuple/set literal ``node`` is (or the one literal the variable ``node`` surely holds), with
        the module it is written in."""
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return node, self.interp.module
        sequences = [obj for obj in value if obj.kind is Kind.SEQUENCE]
        if len(sequences) == 1 and len(value) == 1:
            literal = sequences[0].info.get("node")
            if isinstance(literal, (ast.List, ast.Tuple, ast.Set)):
                return literal, sequences[0].info.get("module")
        return None


def _argument(value: Any) -> Optional[Argument]:
    if isinstance(value, list) and len(value) == 2:
        return int(value[0]), str(value[1])
    return None


def default_operand(node: ast.AST) -> Optional[ast.AST]:
    """What an option-with-fallback expression evaluates to when the option is unset (None or empty)."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and len(node.values) == 2:
        return node.values[1]
    if not isinstance(node, ast.IfExp):
        return None
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and _is_none(test.comparators[0]):
        option = dotted_name(test.left)
        if isinstance(test.ops[0], ast.Is) and option is not None and dotted_name(node.orelse) == option:
            return node.body  # `fallback if option is None else option`
        if isinstance(test.ops[0], ast.IsNot) and option is not None and dotted_name(node.body) == option:
            return node.orelse  # `option if option is not None else fallback`
        return None
    option = dotted_name(test)
    if option is not None and dotted_name(node.body) == option:
        return node.orelse  # `option if option else fallback`
    return None


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
