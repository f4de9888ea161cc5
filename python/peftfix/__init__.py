"""peftfix: find and fix the ways PEFT / LoRA fine-tuning silently goes wrong."""

from peftfix.about import version as _version

__version__ = _version()
