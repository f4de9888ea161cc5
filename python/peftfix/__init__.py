"""peftfix: find and fix the ways PEFT / LoRA fine-tuning silently goes wrong.

Library entry points (imported on first use, so ``import peftfix`` stays light):

- ``peftfix.check_adapter(adapter, base, load_as="causal-lm")`` and ``peftfix.BaseIndex`` — checkpoint checks;
- ``peftfix.write_remapped(adapter, out, report)`` — write an adapter with its keys fixed;
- ``peftfix.check_source(source, filename)`` — the source rules on text in memory;
- ``peftfix.verify_adapter(adapter, base=None)`` and ``peftfix.verify_model(peft_model)`` — runtime checks
  (PV001-PV004; need the ``verify`` extra).
"""

_LAZY = {
    "check_adapter": "peftfix.checkpoint",
    "BaseIndex": "peftfix.checkpoint",
    "Report": "peftfix.checkpoint",
    "write_remapped": "peftfix.checkpoint",
    "check_source": "peftfix.source.engine",
    "fix_source": "peftfix.source.engine",
    "verify_adapter": "peftfix.verify",
    "verify_model": "peftfix.verify",
}


def __getattr__(name: str):
    if name == "__version__":  # importlib.metadata costs ~40 ms: only when asked
        from peftfix.about import version

        return version()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'peftfix' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
