"""What transformers, peft, trl and torch calls do to the data-flow model.

Callees are recognised by their resolved qualified names (``transformers.AutoModel.from_pretrained``,
``peft.get_peft_model``), never by text; methods by the kind of object they are called on.
"""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from peftfix.source.adapter_config import adapter_task_type
from peftfix.source.flow.evaluator import Evaluator
from peftfix.source.flow.model import EMPTY, HISTORY_KINDS, Ev, Event, Kind, Obj, State
from peftfix.source.syntax import argument, dotted_name, iter_string_value, keyword_arg, literal_bool, positional_args

# Methods only a model has: a variable they are called on holds a model even when its loading is not shown.
MODEL_METHODS = frozenset(
    {
        "resize_token_embeddings",
        "merge_and_unload",
        "unload",
        "load_adapter",
        "add_adapter",
        "set_adapter",
        "generate",
        "print_trainable_parameters",
        "get_base_model",
        "disable_adapter",
        "enable_adapter_layers",
    }
)

# ``LlamaModel``, ``Qwen2Model``: a bare transformer without task head.
BARE_MODEL = re.compile(r"^(?!TF|Flax)[A-Z][A-Za-z0-9_]*Model$")
NOT_BARE = ("PreTrainedModel", "LMHeadModel", "DoubleHeadsModel", "AutoModel")
LOADER_METHODS = ("from_pretrained", "from_config", "_from_config")
# Methods that return the model they are called on.
SELF_RETURNING = frozenset(
    {
        "to",
        "cuda",
        "cpu",
        "half",
        "float",
        "bfloat16",
        "double",
        "eval",
        "train",
        "requires_grad_",
        "get_base_model",
        "merge_and_unload",
        "unload",
    }
)
TRAINERS_EXPLICITLY_CAUSAL = ("SFTTrainer",)


HEAD_MODEL = re.compile(r"^(?!DataCollator)[A-Z][A-Za-z0-9_]*For[A-Z][A-Za-z0-9]*$")


def model_family(class_name: str) -> Optional[str]:
    """How a transformers class builds a model: 'auto-base', 'bare', 'causal', 'head', or None (not a model)."""
    if class_name == "AutoModel":
        return "auto-base"
    if class_name.endswith(("ForCausalLM", "LMHeadModel")):
        return "causal"
    if HEAD_MODEL.match(class_name):
        return "head"
    if BARE_MODEL.match(class_name) and not class_name.endswith(NOT_BARE):
        return "bare"
    return None


def is_tokenizer_class(class_name: str) -> bool:
    return class_name.endswith(("Tokenizer", "TokenizerFast", "Processor"))


class CallSemantics:
    """What library calls do to the data-flow model, evaluated through the interpreter's :class:`Evaluator`."""

    def __init__(self, interpreter: Evaluator):
        self.interp = interpreter
        self.ctx = interpreter.ctx

    # ------------------------------------------------------------------------------------------ dispatch

    def evaluate(self, call: cst.Call, state: State) -> frozenset:
        func = call.func
        # ``SFTTrainer(...).train`` resolves to ``trl.SFTTrainer.train`` for libcst: only plain dotted names count.
        qualified = self.interp.qualified(func, state)
        receiver = EMPTY
        callee = EMPTY
        if qualified is None:
            if isinstance(func, cst.Attribute):
                receiver = self.interp.eval(func.value, state)
            else:
                callee = self.interp.eval(func, state)
        args = [self.interp.eval(arg.value, state) for arg in call.args]
        if qualified is not None:
            return self.imported_call(call, qualified, args, state)
        result = EMPTY
        functions = [obj for obj in callee if obj.kind is Kind.FUNCTION]
        if self._is_linear_helper(call, functions):
            self._linear_helper(call, args, state)
        for function in functions:
            result |= self.interp.call_local_function(call, function.info["node"], args, state)
        if functions:
            return result
        if not receiver and isinstance(func, cst.Attribute) and func.attr.value in MODEL_METHODS:
            receiver = self.materialize(func.value, state)
        if receiver and isinstance(func, cst.Attribute):  # (a receiver comes only from an attribute call)
            return self.method_call(call, func.attr.value, receiver, args, state)
        models = frozenset(obj for obj in callee if obj.kind in (Kind.MODEL, Kind.PARAM))
        if models:  # model(...) is a forward pass
            return self.forward(call, models, state)
        # An unknown call: what it computes from a loss or from parameters is still tied to that model.
        views = EMPTY
        for value in args:
            views |= frozenset(obj for obj in value if obj.kind in (Kind.OUTPUT, Kind.PARAMETERS))
        if isinstance(func, cst.Attribute) and func.attr.value == "backward":  # accelerator.backward(loss)
            self._train_from_outputs(call, views, state)
        return views

    def imported_call(self, call: cst.Call, qualified: str, args: list, state: State) -> frozenset:
        package = qualified.split(".", 1)[0]
        parts = qualified.split(".")
        member = parts[-1]
        owner = parts[-2] if len(parts) >= 2 else ""
        if package == "transformers":
            if member in LOADER_METHODS and model_family(owner):
                return self.load_model(call, owner, member, state)
            if member == "from_pretrained" and is_tokenizer_class(owner):
                return self.load_tokenizer(call, state)
            if model_family(member) and member != "AutoModel" and not member.startswith("AutoModel"):
                return self.load_model(call, member, "init", state)  # LlamaModel(config)
            if member == "BitsAndBytesConfig":
                return self.quant_config(call)
            if member.endswith("Trainer"):
                return self.trainer(call, member, args, state)
            if member in ("AdamW", "Adafactor"):
                return self.optimizer(args)
        elif package == "peft":
            if member == "get_peft_model":
                return self.get_peft_model(call, args, state)
            if member == "from_pretrained" and (
                owner == "PeftModel" or owner.startswith(("PeftModelFor", "PeftMixedModel"))
            ):
                return self.load_peft(call, args, state)
            if member == "from_pretrained" and owner.startswith("AutoPeftModel"):
                return self.create_peft(call, state)
            if member in ("prepare_model_for_kbit_training", "prepare_model_for_int8_training"):
                models = self.model_argument(call, 0, "model", args, state)
                self.interp.apply(models, Event(Ev.KBIT_PREP, call), state)
                return models
            if member.endswith("Config") and member[:1].isupper():
                return self.peft_config(call, member, args, state)
        elif package == "trl":
            if member.endswith("Trainer"):
                return self.trainer(call, member, args, state)
        elif package in ("torch", "bitsandbytes"):
            if parts[1:2] == ["optim"] and "lr_scheduler" not in parts and member[:1].isupper():
                return self.optimizer(args)
            if qualified == "torch.compile":
                return args[0] if args else EMPTY
        elif package == "os":
            return self.environment_lookup(call, qualified)
        if "linear" in member.lower():
            self._linear_helper(call, args, state)
        return EMPTY

    # ------------------------------------------------------------------------------------- constructors

    def load_model(self, call: cst.Call, class_name: str, construct: str, state: State) -> frozenset:
        func = call.func
        # The class for `AutoModel.from_pretrained(...)`, else the callee itself.
        reference = func.value if construct != "init" and isinstance(func, cst.Attribute) else func
        trust = keyword_arg(call, "trust_remote_code")
        event = Event(
            Ev.CREATE_MODEL,
            call,
            {
                "family": model_family(class_name),
                "class_name": class_name,
                "ref": reference,
                "construct": construct,
                "trust_remote_code": trust is not None and literal_bool(trust.value) is not False,
                "quantized": self.quantized(call, state),
            },
        )
        obj = self.interp.new_object(Kind.MODEL, state, event)
        return frozenset([obj])

    def create_peft(self, call: cst.Call, state: State) -> frozenset:
        info = self.trainable_info(call)
        info["quantized"] = self.quantized(call, state)
        obj = self.interp.new_object(Kind.MODEL, state, Event(Ev.CREATE_PEFT, call, info))
        return frozenset([obj])

    def load_tokenizer(self, call: cst.Call, state: State) -> frozenset:
        path = argument(call, 0, "pretrained_model_name_or_path")
        key = self.value_key(path.value, state) if path is not None else None
        event = Event(Ev.CREATE_TOKENIZER, call, {"path_key": key})
        return frozenset([self.interp.new_object(Kind.TOKENIZER, state, event)])

    def quant_config(self, call: cst.Call) -> frozenset:
        flags = [
            literal_bool(arg.value)
            for arg in call.args
            if arg.keyword and arg.keyword.value in ("load_in_4bit", "load_in_8bit")
        ]
        # Unknown flag values count as quantized: the config exists to quantize.
        quantized = any(flag is not False for flag in flags)
        return frozenset([Obj(Kind.QUANT_CONFIG, quantized=quantized, node=call)])

    def quantized(self, call: cst.Call, state: State) -> bool:
        for name in ("load_in_4bit", "load_in_8bit"):
            arg = keyword_arg(call, name)
            if arg is not None and literal_bool(arg.value) is not False:
                return True
        arg = keyword_arg(call, "quantization_config")
        if arg is None or (isinstance(arg.value, cst.Name) and arg.value.value == "None"):
            return False
        configs = [obj for obj in self.interp.eval_quiet(arg.value, state) if obj.kind is Kind.QUANT_CONFIG]
        return any(config.info["quantized"] for config in configs) if configs else True

    def peft_config(self, call: cst.Call, class_name: str, args: list, state: State) -> frozenset:
        task = keyword_arg(call, "task_type")
        rank = keyword_arg(call, "r")
        targets = keyword_arg(call, "target_modules")
        config = Obj(
            Kind.PEFT_CONFIG,
            class_name=class_name,
            node=call,
            task_type=self.task_type(task.value, state) if task is not None else None,
            rank=self.int_value(rank.value, state) if rank is not None else None,
            targets=self.literal_sequence(targets.value, state) if targets is not None else None,
        )
        self.interp.emit(Event(Ev.PEFT_CONFIG, call, {"config": config}))
        return frozenset([config])

    def trainer(self, call: cst.Call, class_name: str, args: list, state: State) -> frozenset:
        model_arg = argument(call, 0, "model")
        models = EMPTY
        if model_arg is not None:
            models = frozenset(
                obj for obj in self.interp.eval_quiet(model_arg.value, state) if obj.kind in HISTORY_KINDS
            )
        explicit = class_name in TRAINERS_EXPLICITLY_CAUSAL
        self.interp.apply(
            models, Event(Ev.CAUSAL_USE, call, {"reason": f"`{class_name}`", "explicit": explicit}), state
        )
        return frozenset([Obj(Kind.TRAINER, models=models, node=call)])

    def optimizer(self, args: list) -> frozenset:
        models = EMPTY
        if args:
            for obj in args[0]:
                if obj.kind is Kind.PARAMETERS:
                    models |= obj.models
                elif obj.kind in HISTORY_KINDS:
                    models |= frozenset([obj])
        return frozenset([Obj(Kind.OPTIMIZER, models=models)])

    def environment_lookup(self, call: cst.Call, qualified: str) -> frozenset:
        if qualified in ("os.environ.get", "os.getenv"):
            name = argument(call, 0, "key")
            value = iter_string_value(name.value) if name is not None else None
            default = argument(call, 1, "default")
            if value is not None:
                fallback = iter_string_value(default.value) if default is not None else None
                return self.interp.const(call, fallback, f"env:{value}")
        return EMPTY

    # ------------------------------------------------------------------------------------------ peft

    def get_peft_model(self, call: cst.Call, args: list, state: State) -> frozenset:
        models = self.model_argument(call, 0, "model", args, state)
        config_arg = argument(call, 1, "peft_config")
        configs = EMPTY
        if config_arg is not None:
            configs = frozenset(
                o for o in self.interp.eval_quiet(config_arg.value, state) if o.kind is Kind.PEFT_CONFIG
            )
        model_arg = argument(call, 0, "model")
        event = Event(
            Ev.GET_PEFT_MODEL, call, {"configs": configs, "model_arg": model_arg.value if model_arg else None}
        )
        self.interp.apply(models, event, state)
        return models

    def load_peft(self, call: cst.Call, args: list, state: State) -> frozenset:
        models = self.model_argument(call, 0, "model", args, state)
        path = argument(call, 1, "model_id")
        model_arg = argument(call, 0, "model")
        info = self.trainable_info(call)
        info.update(
            adapter_task=self.adapter_task(path.value, state) if path is not None else None,
            path_key=self.value_key(path.value, state) if path is not None else None,
            model_arg=model_arg.value if model_arg is not None else None,
            tokenizers=self.tokenizers_in_scope(state),
        )
        self.interp.apply(models, Event(Ev.LOAD_PEFT, call, info), state)
        return models

    def adapter_task(self, node: cst.CSTNode, state: State) -> Optional[str]:
        """The ``task_type`` of the adapter at ``node``'s path when it is a local directory written in the file."""
        paths = {obj.info.get("value") for obj in self.interp.eval_quiet(node, state) if obj.kind is Kind.CONST}
        if len(paths) != 1:
            return None
        (path,) = paths
        return adapter_task_type(path, self.ctx.filename) if isinstance(path, str) else None

    def trainable_info(self, call: cst.Call) -> dict:
        arg = keyword_arg(call, "is_trainable")
        if arg is None:
            return {"trainable": False, "explicit_false": False}
        value = literal_bool(arg.value)
        # A computed flag may be True: only a literal False (or none at all) freezes for sure.
        return {"trainable": value is not False, "explicit_false": value is False}

    def tokenizers_in_scope(self, state: State) -> tuple:
        found = []
        for name, value in state.env.items():
            for obj in value:
                if obj.kind is Kind.TOKENIZER:
                    found.append((name, obj, state.heap.get(obj, frozenset())))
        return tuple(found)

    # ------------------------------------------------------------------------------------------ methods

    def method_call(self, call: cst.Call, method: str, receiver: frozenset, args: list, state: State) -> frozenset:
        result = EMPTY
        models = frozenset(obj for obj in receiver if obj.kind in (Kind.MODEL, Kind.PARAM))
        if models:
            result |= self.model_method(call, method, models, args, state)
        tokenizers = frozenset(obj for obj in receiver if obj.kind is Kind.TOKENIZER)
        if tokenizers and method in ("add_tokens", "add_special_tokens"):
            self.interp.apply(tokenizers, Event(Ev.TOKENS_ADDED, call, {"method": method}), state)
        params = frozenset(obj for obj in receiver if obj.kind is Kind.PARAM)
        for obj in receiver:
            if obj.kind is Kind.TRAINER and method == "train":
                self.interp.apply(obj.models, Event(Ev.TRAIN, call, {"via": "`trainer.train()`"}), state)
            elif obj.kind is Kind.OPTIMIZER and method == "step":
                self.interp.apply(obj.models, Event(Ev.TRAIN, call, {"via": "`optimizer.step()`"}), state)
            elif obj.kind is Kind.OUTPUT and method == "backward":
                self.interp.apply(obj.models, Event(Ev.TRAIN, call, {"via": "`.backward()`"}), state)
            elif obj.kind is Kind.PARAMETERS and method == "requires_grad_" and self._switches_on(call):
                self.interp.apply(obj.models, Event(Ev.UNFREEZE, call), state)
            elif obj.kind in (Kind.OUTPUT, Kind.PARAMETERS):
                result |= frozenset([obj])
        deferred = {"train": Ev.CALL_TRAIN, "step": Ev.CALL_STEP, "backward": Ev.CALL_BACKWARD}.get(method)
        if params and deferred is not None:
            self.interp.apply(params, Event(deferred, call, {"via": f"`.{method}()`"}), state)
        if method == "backward":
            outputs = EMPTY
            for value in args:
                outputs |= frozenset(obj for obj in value if obj.kind is Kind.OUTPUT)
            self._train_from_outputs(call, outputs, state)
        return result

    def model_method(self, call: cst.Call, method: str, models: frozenset, args: list, state: State) -> frozenset:
        if method == "load_adapter":
            name = argument(call, 1, "adapter_name")
            adapter_name = iter_string_value(name.value) if name is not None else None
            self.interp.apply(models, Event(Ev.LOAD_ADAPTER, call, {"adapter_name": adapter_name}), state)
        simple_events = {
            "merge_and_unload": Ev.MERGE,
            "unload": Ev.UNWRAP,
            "add_adapter": Ev.ADD_ADAPTER,
            "set_adapter": Ev.SET_ADAPTER,
            "resize_token_embeddings": Ev.RESIZE,
        }
        if method in simple_events:
            self.interp.apply(models, Event(simple_events[method], call), state)
        elif method == "generate":
            self.interp.apply(models, Event(Ev.CAUSAL_USE, call, {"reason": "`.generate()`", "explicit": True}), state)
        elif method == "forward":
            return self.forward(call, models, state)
        elif method in ("parameters", "named_parameters"):
            return frozenset([Obj(Kind.PARAMETERS, models=models)])
        elif method == "requires_grad_" and self._switches_on(call):
            self.interp.apply(models, Event(Ev.UNFREEZE, call), state)
        elif "linear" in method.lower():
            self.interp.apply(models, Event(Ev.LINEAR_HELPER, call, {"helper": method}), state)
        if method in SELF_RETURNING:
            return models
        return EMPTY

    def forward(self, call: cst.Call, models: frozenset, state: State) -> frozenset:
        if keyword_arg(call, "labels") is not None:
            event = Event(Ev.CAUSAL_USE, call, {"reason": "`labels=` in the forward call", "explicit": True})
            self.interp.apply(models, event, state)
        return frozenset([Obj(Kind.OUTPUT, models=models)])

    def requires_grad_assigned(self, target: cst.Attribute, state: State) -> None:
        """``p.requires_grad = True`` over a model's parameters unfreezes that model."""
        for obj in self.interp.eval(target.value, state):
            if obj.kind is Kind.PARAMETERS:
                self.interp.apply(obj.models, Event(Ev.UNFREEZE, target), state)

    def subscript(self, node: cst.Subscript, base: frozenset, state: State) -> frozenset:
        result = frozenset(obj for obj in base if obj.kind in (Kind.OUTPUT, Kind.PARAMETERS))
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            index = node.slice[0].slice.value
            if isinstance(index, cst.Integer):
                position = int(index.evaluated_value)
                for obj in base:
                    if obj.kind is Kind.SEQUENCE and -len(obj.info["items"]) <= position < len(obj.info["items"]):
                        result |= obj.info["items"][position]
            key = iter_string_value(index)
            if key is not None and self.interp.qualified(node.value, state) == "os.environ":
                return self.interp.const(node, None, f"env:{key}")
        return result

    # ------------------------------------------------------------------------------------------ helpers

    def model_argument(self, call: cst.Call, position: int, keyword: str, args: list, state: State) -> frozenset:
        """The models passed at ``position``/``keyword``; a plain variable the file never showed being
        loaded still holds *some* model, so it gets one (of unknown origin)."""
        arg = argument(call, position, keyword)
        if arg is None:
            return EMPTY
        index = list(call.args).index(arg)
        value = args[index] if index < len(args) else EMPTY
        models = frozenset(obj for obj in value if obj.kind in HISTORY_KINDS)
        return models or self.materialize(arg.value, state)

    def materialize(self, node: cst.CSTNode, state: State) -> frozenset:
        """A model of unknown origin for a variable that surely holds one (None if ``node`` is no variable)."""
        name = dotted_name(node)
        if name is None or state.env.get(name):
            return EMPTY
        obj = self.interp.new_object(Kind.MODEL, state, Event(Ev.ORIGIN_UNKNOWN, node))
        state.bind(name, frozenset([obj]))
        return frozenset([obj])

    def _is_linear_helper(self, call: cst.Call, functions: list) -> bool:
        name = (
            call.func.value
            if isinstance(call.func, cst.Name)
            else getattr(getattr(call.func, "attr", None), "value", "")
        )
        return "linear" in str(name).lower()

    def _linear_helper(self, call: cst.Call, args: list, state: State) -> None:
        models = EMPTY
        for value in args:
            models |= frozenset(obj for obj in value if obj.kind in (Kind.MODEL, Kind.PARAM))
        helper = self.ctx.code_for(call.func)
        self.interp.apply(models, Event(Ev.LINEAR_HELPER, call, {"helper": helper}), state)

    def _train_from_outputs(self, call: cst.Call, outputs: frozenset, state: State) -> None:
        for obj in outputs:
            if obj.kind is Kind.OUTPUT:
                self.interp.apply(obj.models, Event(Ev.TRAIN, call, {"via": "`.backward()`"}), state)

    @staticmethod
    def _switches_on(call: cst.Call) -> bool:
        positional = positional_args(call)
        flag = (
            positional[0].value
            if positional
            else (keyword_arg(call, "requires_grad") or cst.Arg(cst.Name("True"))).value
        )
        return literal_bool(flag) is not False

    def value_key(self, node: cst.CSTNode, state: State) -> Optional[str]:
        """A key that is equal for two expressions that surely hold the same path."""
        consts = [obj for obj in self.interp.eval_quiet(node, state) if obj.kind is Kind.CONST and obj.info.get("key")]
        if len(consts) == 1:
            return consts[0].info["key"]
        name = dotted_name(node)
        if name is not None and not consts:
            return f"name:{name}"
        return None

    def int_value(self, node: cst.CSTNode, state: State) -> Optional[int]:
        values = {obj.info.get("value") for obj in self.interp.eval_quiet(node, state) if obj.kind is Kind.CONST}
        if len(values) == 1:
            (value,) = values
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    def task_type(self, node: cst.CSTNode, state: State) -> Optional[str]:
        if isinstance(node, cst.Attribute):
            owner = self.interp.qualified(node.value, state)
            if owner is not None and owner.startswith("peft.") and owner.endswith(".TaskType"):
                return node.attr.value
        values = {obj.info.get("value") for obj in self.interp.eval_quiet(node, state) if obj.kind is Kind.CONST}
        if len(values) == 1:
            (value,) = values
            return value if isinstance(value, str) else None
        return None

    def literal_sequence(self, node: cst.CSTNode, state: State) -> Optional[cst.CSTNode]:
        """The list/tuple/set literal ``node`` is (or the one variable ``node`` surely holds)."""
        if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
            return node
        sequences = {obj.info["node"] for obj in self.interp.eval_quiet(node, state) if obj.kind is Kind.SEQUENCE}
        if len(sequences) == 1:
            return next(iter(sequences))
        return None
