"""Narrowing a path by the condition that chose it: ``isinstance(model, PeftModel)``, ``hasattr(model,
"peft_config")``, ``model is None`` and their negations and conjunctions.

On each side of a branch, an object keeps only the histories that agree with the condition; a path whose tested
variable can hold nothing any more is impossible and ends. Objects whose origin the program does not show stay
on both sides: the condition is what tells them apart at runtime.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from peftfix.source.flow.library import library
from peftfix.source.flow.model import FACT_MARK, HISTORY_KINDS, Ev, Event, Kind, Obj, State, is_peft_model, last_wrap
from peftfix.source.flow.names import dotted_name, on_node

if TYPE_CHECKING:
    from peftfix.source.flow.evaluator import Evaluator


@dataclass(frozen=True)
class Test:
    """``variable`` is a PeftModel (``what="peft"``), is None (``"none"``) or is falsy (``"falsy"``), when
    ``expected``."""

    variable: str
    what: str
    expected: bool
    value: object = None  # the literal of an "eq" test


Condition = list[Test]  # a conjunction; an empty list narrows nothing


def narrow(interp: Evaluator, test: ast.expr, state: State) -> tuple[Optional[State], Optional[State]]:
    """(state where ``test`` holds, state where it does not); None for a side that cannot happen. ``state``
    itself becomes the second: the caller hands it over."""
    conditions = [_condition(interp, test, state, outcome) for outcome in (True, False)]
    sides: list[Optional[State]] = []
    for outcome, condition in zip((True, False), conditions, strict=True):
        side: Optional[State] = state.copy() if outcome else state
        for part, part_outcome in _conjuncts(test, outcome):
            side = _remember(interp, part, part_outcome, side) if side is not None else None
        if side is not None:
            side = _apply(interp, test, condition, side)
        sides.append(side)
    return sides[0], sides[1]


def _conjuncts(test: ast.expr, outcome: bool) -> list[tuple[ast.expr, bool]]:
    """Tests that must each come out as given for ``test`` to come out as ``outcome``."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _conjuncts(test.operand, not outcome)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) == outcome:
        return [part for value in test.values for part in _conjuncts(value, outcome)]
    if isinstance(test, ast.BoolOp):
        return []
    return [(test, outcome)]


def _remember(interp: Evaluator, test: ast.expr, outcome: bool, state: State) -> Optional[State]:
    """The path remembers how a side-effect-free test came out; the same test, unchanged since, cannot come out
    the other way on it."""
    fact, flipped = _fact_of(test)
    if fact is None:
        return state
    wanted = outcome != flipped
    known = state.env.get(fact)
    if known is not None and _fact_value(known) is not None and _fact_value(known) is not wanted:
        return None
    state.env[fact] = interp.const(test, wanted, None)
    return state


def _canonical(test: ast.expr) -> tuple[ast.expr, bool]:
    """The test without its negations (`not x`, `x is not None`), and whether they flip its outcome."""
    flipped = False
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, flipped = test.operand, not flipped
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.IsNot, ast.NotEq)):
        positive = ast.Is() if isinstance(test.ops[0], ast.IsNot) else ast.Eq()
        test = ast.Compare(left=test.left, ops=[positive], comparators=test.comparators)
        flipped = not flipped
    return test, flipped


def _fact_of(test: ast.expr) -> tuple[Optional[str], bool]:
    """The fact key of ``test`` without its negations, and whether they flip it; computed once per test node
    and kept on the node (a tree's facts live and die with it)."""

    def compute() -> tuple[Optional[str], bool]:
        canonical, flipped = _canonical(test)
        return _compute_fact_key(canonical), flipped

    return on_node(test, "fact", compute)


def _compute_fact_key(test: ast.expr) -> Optional[str]:
    """A key for remembering a test's outcome on a path, forgotten when its first variable is bound again; None
    for tests with calls (they may not give the same answer twice)."""
    nodes = list(ast.walk(test))
    if any(isinstance(node, (ast.Call, ast.NamedExpr, ast.Await, ast.Subscript)) for node in nodes):
        return None
    roots = {node.id for node in nodes if isinstance(node, ast.Name)}
    if len(roots) != 1:
        return None
    return f"{roots.pop()}{FACT_MARK}{ast.dump(test, annotate_fields=False)}"


def _fact_value(value: frozenset) -> Optional[bool]:
    values = {obj.info.get("value") for obj in value if obj.kind is Kind.CONST}
    return values.pop() if len(values) == 1 else None


def _condition(interp: Evaluator, test: ast.expr, state: State, outcome: bool) -> Condition:
    """What must be true of the variables for ``test`` to evaluate to ``outcome``."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _condition(interp, test.operand, state, not outcome)
    if isinstance(test, ast.BoolOp):
        all_needed = isinstance(test.op, ast.And) == outcome  # `a and b` true / `a or b` false: every operand
        if not all_needed:
            return []
        return [part for value in test.values for part in _condition(interp, value, state, outcome)]
    if isinstance(test, ast.Call):
        single = _call_test(interp, test, state)
        return [Test(single.variable, single.what, single.expected == outcome)] if single else []
    equality = _equality_test(test)
    if equality is not None:
        variable, value, equal_when_true = equality
        return [Test(variable, "eq", equal_when_true == outcome, value)]
    count = _count_test(test)
    if count is not None:
        variable, positive_when_true = count
        return [Test(variable, "count", positive_when_true == outcome)]
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and _is_none(test.comparators[0]):
        compared = dotted_name(test.left)
        op = test.ops[0]
        if compared is None or not isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)):
            return []
        is_none = isinstance(op, (ast.Is, ast.Eq))
        return [Test(compared, "none", is_none == outcome)]
    tested = dotted_name(test)
    if tested is not None:  # `if model:` — a model is truthy; None, "" and 0 are not
        return [Test(tested, "falsy", not outcome)]
    return []


def _equality_test(test: ast.expr) -> Optional[tuple[str, object, bool]]:
    """``backend == "peft"``: (variable, the literal, whether true means equal)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq))):
        return None
    left, right = test.left, test.comparators[0]
    if isinstance(left, ast.Constant):
        left, right = right, left
    variable = dotted_name(left)
    if variable is None or not isinstance(right, ast.Constant) or not isinstance(right.value, (str, int)):
        return None
    return variable, right.value, isinstance(test.ops[0], ast.Eq)


def _count_test(test: ast.expr) -> Optional[tuple[str, bool]]:
    """``n > 0``-style tests: (variable, whether true means positive)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if isinstance(left, ast.Constant) and not isinstance(right, ast.Constant):  # `0 < n`
        left, right = right, left
        op = {ast.Lt: ast.Gt(), ast.Gt: ast.Lt(), ast.LtE: ast.GtE(), ast.GtE: ast.LtE()}.get(type(op), op)
    variable = dotted_name(left)
    bound = right.value if isinstance(right, ast.Constant) else None
    if variable is None or not isinstance(bound, int) or isinstance(bound, bool) or bound not in (0, 1):
        return None
    positive: Optional[bool] = {
        (ast.Gt, 0): True,
        (ast.GtE, 1): True,
        (ast.NotEq, 0): True,
        (ast.Eq, 0): False,
        (ast.Lt, 1): False,
        (ast.LtE, 0): False,
    }.get((type(op), bound))
    return (variable, positive) if positive is not None else None


def _call_test(interp: Evaluator, call: ast.Call, state: State) -> Optional[Test]:
    callee = interp.qualified(call.func, state)
    if len(call.args) != 2 or call.keywords:
        return None
    variable = dotted_name(call.args[0])
    if variable is None:
        return None
    model = library()
    if callee == "builtins.isinstance":
        classes = call.args[1].elts if isinstance(call.args[1], ast.Tuple) else [call.args[1]]
        for cls in classes:
            qualified = interp.qualified(cls, state)
            if qualified is not None and model.is_peft_model_class(qualified):
                return Test(variable, "peft", True)
        return None
    if callee == "builtins.hasattr":
        attribute = call.args[1]
        if isinstance(attribute, ast.Constant) and attribute.value in model.peft_model_attributes:
            injected = attribute.value in model.injected_attributes
            return Test(variable, "peft-or-injected" if injected else "peft", True)
    return None


def _could_be_none(obj: Obj, state: State, falsy: bool) -> tuple[bool, bool]:
    """(whether ``obj`` may be None — or falsy —, whether it may be something else)."""
    if obj.kind is Kind.CONST:
        value = obj.info.get("value")
        empty = (not value) if falsy else value is None
        return empty, not empty
    if obj.kind is Kind.PARAM:
        return True, True
    if obj.kind in HISTORY_KINDS:
        unknown = any(not history or history[0].kind is Ev.ORIGIN_UNKNOWN for history in state.heap.get(obj, ()))
        return unknown, True
    return falsy, True


def _is_peft(history: tuple, test: Test) -> Optional[bool]:
    """What the test sees: ``isinstance(base, PeftModel)`` is False for the model LoRA was injected into in place
    (``PeftModel.from_pretrained(base, ...)`` wraps ``base``), though ``hasattr(base, "peft_config")`` is True."""
    wrap = last_wrap(history)
    if (
        test.what == "peft"
        and wrap is not None
        and test.variable == dotted_name(wrap.get("model_arg"))
        and test.variable not in wrap.get("bound_to", ())
    ):
        return False
    return is_peft_model(history)


def _literal(obj: Obj) -> bool:
    """A constant written in the program (not a default that stands for an environment variable)."""
    key = obj.info.get("key")
    return key is None or str(key).startswith("str:")


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _apply(interp: Evaluator, node: ast.expr, condition: Condition, state: State) -> Optional[State]:
    for test in condition:
        value = state.env.get(test.variable)
        if not value:
            continue  # nothing known of the variable: nothing to narrow
        kept = set()
        for obj in value:
            if obj.kind is Kind.COUNT:
                positive = test.expected if test.what == "count" else not test.expected
                if not positive and test.what in ("count", "falsy"):
                    # Nothing was added: the tokenizer's history loses that addition on this path.
                    added = obj.info["event"]
                    for tokenizer in obj.info["tokenizers"]:
                        state.heap[tokenizer] = frozenset(
                            tuple(e for e in history if e is not added) for history in state.heap.get(tokenizer, ())
                        )
                kept.add(obj)
                continue
            if test.what == "eq":
                if obj.kind is Kind.CONST and _literal(obj):
                    if (obj.info.get("value") == test.value) == test.expected:
                        kept.add(obj)
                    continue
                if obj.kind is not Kind.PARAM:
                    kept.add(obj)
                    continue
            if obj.kind is Kind.PARAM:
                # What a parameter is depends on the caller: the path holds only for callers where the test does.
                assumption = Event(
                    Ev.ASSUME,
                    node,
                    interp.module,
                    {"what": test.what, "expected": test.expected, "value": test.value},
                )
                state.heap[obj] = frozenset((*history, assumption) for history in state.heap.get(obj, ((),)))
                kept.add(obj)
                continue
            if test.what in ("none", "falsy"):
                can_be, can_be_other = _could_be_none(obj, state, falsy=test.what == "falsy")
                if (can_be and test.expected) or (can_be_other and not test.expected):
                    kept.add(obj)
            elif obj.kind in HISTORY_KINDS:
                histories = frozenset(
                    history
                    for history in state.heap.get(obj, frozenset())
                    if _is_peft(history, test) in (test.expected, None)
                )
                if histories:
                    state.heap[obj] = histories
                    kept.add(obj)
            elif not test.expected:  # anything else is not a PeftModel
                kept.add(obj)
        if not kept:
            return None
        state.env[test.variable] = frozenset(kept)
    return state
