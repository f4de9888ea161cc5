"""Fixes: deciding on the ``ast`` whether one is possible and safe (``decisions``), and building its edits on
libcst when it is applied or shown (``bridge`` from ast to libcst nodes, ``sequences`` that keep a literal's layout,
``imports``, and the shared ``recipes``). Rules plan fixes; the engine builds and applies them."""


class FixUnavailable(Exception):
    """A planned fix cannot be built on this file's libcst tree (a node has no counterpart): it is dropped."""
