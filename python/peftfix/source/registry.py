"""The source rules, ordered by code (the catalog reads their documentation from here)."""

from __future__ import annotations

import inspect
from typing import Optional

from peftfix.diagnostics import CodeInfo
from peftfix.source.rule import Rule
from peftfix.source.rules import (
    pf000_parse_error,
    pf101_automodel_for_causal_lm,
    pf201_stray_get_peft_model,
    pf202_peft_model_rewrapped,
    pf203_frozen_adapter_training,
    pf204_kbit_prep_after_peft,
    pf205_merge_into_quantized,
    pf301_non_linear_target_module,
    pf302_excessive_rank,
    pf401_resize_before_adapter_load,
)
from peftfix.source.settings import Settings

ALL_RULES: list[type[Rule]] = sorted(
    [
        pf000_parse_error.ParseError,
        pf101_automodel_for_causal_lm.AutoModelForCausalLm,
        pf201_stray_get_peft_model.StrayGetPeftModel,
        pf202_peft_model_rewrapped.PeftModelRewrapped,
        pf203_frozen_adapter_training.FrozenAdapterTraining,
        pf204_kbit_prep_after_peft.KbitPrepAfterPeft,
        pf205_merge_into_quantized.MergeIntoQuantized,
        pf301_non_linear_target_module.NonLinearTargetModule,
        pf302_excessive_rank.ExcessiveRank,
        pf401_resize_before_adapter_load.ResizeBeforeAdapterLoad,
    ],
    key=lambda rule: rule.code,
)
_BY_CODE = {rule.code: rule for rule in ALL_RULES}


def rule_by_code(code: str) -> Optional[type[Rule]]:
    return _BY_CODE.get(code.upper())


def all_codes() -> list[str]:
    return [rule.code for rule in ALL_RULES]


def default_codes() -> list[str]:
    return [rule.code for rule in ALL_RULES if rule.default_enabled]


def default_settings() -> Settings:
    """The rules on by default, no unsafe fixes, the default rank limit."""
    return Settings(enabled=frozenset(default_codes()))


def code_info(rule: type[Rule]) -> CodeInfo:
    """What the catalog shows of a rule: its class attributes and its docstring."""
    return CodeInfo(
        code=rule.code,
        name=rule.name,
        summary=rule.summary,
        fix_availability=rule.fix_availability,
        default_enabled=rule.default_enabled,
        documentation=inspect.cleandoc(rule.__doc__ or ""),
        command="check",
    )


def code_infos() -> list[CodeInfo]:
    return [code_info(rule) for rule in ALL_RULES]
