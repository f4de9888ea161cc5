from __future__ import annotations

from peftfix.source.rule import Invalid, Rule


class ParseError(Rule):
    """## What it does
    Reports a file that cannot be checked: it is not valid Python for the parser, it is not valid text in its
    declared encoding (UTF-8 unless a coding cookie says otherwise), or it is binary.

    ## Why is this bad?
    Nothing in the file can be checked, so any PEFT pitfall in it goes unseen; Python itself would refuse to
    run it.

    ## Example
    ```python
    model = get_peft_model(model, config
    ```

    ## Fix safety
    There is no fix. peftfix never modifies a file it cannot parse.
    """

    code = "PF000"
    name = "parse-error"
    summary = "The file cannot be parsed or decoded; nothing in it was checked."
    fix_availability = "none"
    VALID = (
        "",
        "\n\n",
        "# only a comment\n",
        "import peft\nmodel = peft.get_peft_model(model, config)\n",
        "def f(a, /, b, *, c):\n    return (x := a) if b else c\n",
        "match command:\n    case [x, *rest]:\n        pass\n",
    )
    INVALID = (
        Invalid("import peft\nmodel = peft.get_peft_model(model, config\n"),
        Invalid("def f(:\n    pass\n"),
        Invalid("from peft import PeftModel\nif True:\nmodel = PeftModel.from_pretrained(base, 'a')\n"),
        Invalid("import transformers\nx = 'unterminated\n"),
        Invalid("import peft\nclass A:\n    def f(self):\n  return 1\n"),
        Invalid("from peft import LoraConfig\nconfig = LoraConfig(r=8))\n"),
    )
