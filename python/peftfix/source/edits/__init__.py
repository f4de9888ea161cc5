"""Building the text edits of fixes: sequence edits that keep a literal's layout (``sequences``), import edits
(``imports``) and the recipes several rules share (``recipes``). Rules build edits; the engine applies them."""
