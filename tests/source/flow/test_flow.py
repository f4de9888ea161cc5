"""The data-flow model behind the rules: paths, functions, names — checked through the findings they produce."""

from __future__ import annotations

import json
import textwrap

import pytest

from peftfix.source.engine import check_source
from peftfix.source.registry import ALL_RULES
from peftfix.source.settings import Settings

EVERYTHING = Settings(enabled=frozenset(rule.code for rule in ALL_RULES))


def codes(source: str, filename: str = "script.py") -> list[tuple[str, int]]:
    return [(d.code, d.location.row) for d in check_source(textwrap.dedent(source), filename, EVERYTHING)]


def test_tuple_returned_by_a_helper_is_unpacked():
    assert codes(
        """
        from transformers import AutoModel, AutoTokenizer
        def load(path):
            model = AutoModel.from_pretrained(path)
            tokenizer = AutoTokenizer.from_pretrained(path)
            return model, tokenizer
        model, tokenizer = load("m")
        model.generate(tokenizer("hi", return_tensors="pt").input_ids)
        """
    ) == [("PF101", 4)]


def test_exclusive_branches_are_not_one_path():
    assert (
        codes(
            """
        from peft import PeftModel, get_peft_model
        if resume:
            model = PeftModel.from_pretrained(model, "ckpt", is_trainable=True)
        elif fresh:
            model = get_peft_model(model, config)
        else:
            raise SystemExit("nothing to do")
        """
        )
        == []
    )


def test_a_returning_branch_does_not_reach_what_follows():
    assert (
        codes(
            """
        from peft import PeftModel, get_peft_model
        def build(model, resume):
            if resume:
                model = PeftModel.from_pretrained(model, "ckpt", is_trainable=True)
                return model
            return get_peft_model(model, config)
        """
        )
        == []
    )


def test_try_handler_sees_the_body_effects():
    assert codes(
        """
        from peft import PeftModel, get_peft_model
        try:
            model = PeftModel.from_pretrained(model, "ckpt")
        except OSError:
            pass
        model = get_peft_model(model, config)
        """
    ) == [("PF202", 7)]


def test_with_block_and_walrus_are_followed():
    assert codes(
        """
        import torch
        from peft import PeftModel
        with torch.device("cpu"):
            if (model := PeftModel.from_pretrained(base, "a")) is not None:
                optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                optimizer.step()
        """
    ) == [("PF203", 5)]


def test_a_parameter_shadowing_a_module_name_is_not_peft():
    assert (
        codes(
            """
        from peft import PeftModel
        def run(PeftModel, base):
            model = PeftModel.from_pretrained(base, "a")
            model.merge_and_unload()
        """
        )
        == []
    )


def test_rebinding_the_name_to_a_new_model_starts_a_new_history():
    assert (
        codes(
            """
        from transformers import AutoModelForCausalLM
        from peft import PeftModel, get_peft_model
        model = get_peft_model(AutoModelForCausalLM.from_pretrained("m"), config)
        model = AutoModelForCausalLM.from_pretrained("m")
        model = PeftModel.from_pretrained(model, "adapter")
        """
        )
        == []
    )


@pytest.mark.parametrize(
    "loop, expected",
    [
        # A while loop may not run at all: the path that skips the resize is real.
        ("while not resized:", [("PF401", 7)]),
        # A for loop is taken to run at least once (over parameters, a dataset...).
        ("for _ in range(1):", []),
    ],
)
def test_while_loops_may_not_run_for_loops_do(loop, expected):
    assert codes(
        f"""
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from peft import PeftModel
        tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
        model = AutoModelForCausalLM.from_pretrained(BASE)
        {loop}
            model.resize_token_embeddings(len(tokenizer))
        model = PeftModel.from_pretrained(model, ADAPTER)
        """
    ) == [(code, line + 1) for code, line in expected]


def test_causal_adapter_config_on_disk_is_evidence(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"task_type": "CAUSAL_LM", "peft_type": "LORA"}))
    script = tmp_path / "infer.py"
    source = """
        from transformers import AutoModel
        from peft import PeftModel
        model = AutoModel.from_pretrained("base")
        model = PeftModel.from_pretrained(model, "adapter")
        """
    assert codes(source, str(script)) == [("PF101", 4)]
    (adapter / "adapter_config.json").write_text(json.dumps({"task_type": "FEATURE_EXTRACTION"}))
    from peftfix.source import adapter_config

    adapter_config._task_type.cache_clear()
    assert codes(source, str(script)) == []


@pytest.mark.parametrize("max_rank, expected", [(256, []), (64, [("PF302", 3)])])
def test_max_rank_setting(max_rank, expected):
    settings = Settings(enabled=frozenset({"PF302"}), max_rank=max_rank)
    source = "from peft import LoraConfig\n\nconfig = LoraConfig(r=128)\n"
    assert [(d.code, d.location.row) for d in check_source(source, "x.py", settings)] == expected


def test_suppression_comments():
    source = textwrap.dedent(
        """
        from peft import LoraConfig
        a = LoraConfig(r=1024)  # noqa: PF302
        b = LoraConfig(r=1024)  # peftfix: ignore[PF302]
        c = LoraConfig(r=1024)  # noqa
        d = LoraConfig(r=1024)  # noqa: PF301
        e = LoraConfig(r=1024)  # peftfix: ignore[PF101, PF201]
        """
    )
    assert [(d.code, d.location.row) for d in check_source(source, "x.py", EVERYTHING)] == [("PF302", 6), ("PF302", 7)]


@pytest.mark.parametrize(
    "source",
    [
        # PF202 on a resume branch: deleting get_peft_model would leave the fresh path without LoRA.
        """
        from peft import PeftModel, get_peft_model
        if args.resume:
            model = PeftModel.from_pretrained(model, args.ckpt)
        model = get_peft_model(model, config)
        """,
        # PF201 with the load on a branch: the fresh path needs the get_peft_model call.
        """
        from peft import PeftModel, get_peft_model
        model = get_peft_model(model, config)
        if args.resume:
            model = PeftModel.from_pretrained(model, args.ckpt)
        """,
    ],
)
def test_no_fix_when_another_path_needs_the_call(source):
    diagnostics = check_source(textwrap.dedent(source), "x.py", EVERYTHING)
    assert diagnostics and all(d.fix is None or not d.fix.edits for d in diagnostics)


def test_methods_see_what_init_left_on_self():
    assert codes(
        """
        import transformers
        class Finetune:
            def __init__(self, path):
                self.model = transformers.AutoModel.from_pretrained(path)
            def run(self, data):
                transformers.Trainer(model=self.model, train_dataset=data).train()
        """
    ) == [("PF101", 5)]
