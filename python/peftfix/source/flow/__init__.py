"""The data-flow model: which variable holds a base model, a PeftModel, a tokenizer, and what happened to it.

``model`` defines the abstract values and events, ``interpreter`` walks a scope's statements in order
(branches explored separately and merged), ``calls`` gives transformers/peft calls their meaning, and
``evaluator`` is the protocol through which the call semantics ask the interpreter to evaluate, so the two
modules never import each other. ``names`` resolves imported names.
"""
