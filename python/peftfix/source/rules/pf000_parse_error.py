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
    VALID = ("x = 1\n", "")
    INVALID = (Invalid("import peft\nmodel = peft.get_peft_model(model, config\n"), Invalid("def f(:\n    pass\n"))
