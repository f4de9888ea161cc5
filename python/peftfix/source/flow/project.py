"""The checked program: which file an import of the project refers to, and each file parsed once.

An import resolves to a file of the project when it names a module beside the importing file, a module of the
package the file belongs to (relative imports, or absolute ones from the top of the package), or a module under
one of the checked roots. Names of the libraries the flow models (``peft``, ``transformers``...) never resolve
to project files. A file that cannot be read or parsed is simply not part of the project.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from typing import Optional

from peftfix.source.flow.names import TRACKED_PACKAGES, ImportTarget
from peftfix.source.module import SourceModule
from peftfix.source.notebook import NotebookError, is_notebook
from peftfix.source.notebook import read as read_notebook
from peftfix.source.parsing import parse_python

# Reads a file's text (decoded as Python does), or None when it cannot be used.
Reader = Callable[[str], Optional[str]]


def read_python(path: str) -> Optional[str]:
    from peftfix.files import read_regular
    from peftfix.source.decoding import SourceError, decode

    try:
        return decode(read_regular(path))[0]
    except (OSError, SourceError):
        return None


class Project:
    """Modules of the program, parsed on first use and kept for the run."""

    def __init__(self, roots: Iterable[str] = (), reader: Reader = read_python):
        self.roots = [os.path.abspath(root) for root in roots]
        self._reader = reader
        self._modules: dict[str, Optional[SourceModule]] = {}
        self._overrides: dict[str, SourceModule] = {}
        self._found: dict[tuple[str, str], Optional[str]] = {}

    # ------------------------------------------------------------------------------------------- files

    def add(self, module: SourceModule) -> None:
        """Use ``module`` for its file (the text being checked, which may differ from the file on disk)."""
        self._overrides[os.path.abspath(module.filename)] = module

    def module_at(self, path: str) -> Optional[SourceModule]:
        key = os.path.abspath(path)
        if key in self._overrides:
            return self._overrides[key]
        if key not in self._modules:
            self._modules[key] = self._load(path)
        return self._modules[key]

    def _load(self, path: str) -> Optional[SourceModule]:
        text = self._reader(path)
        if text is None:
            return None
        if is_notebook(path):  # a notebook whose analysis reaches a module being fixed: its cells' program
            try:
                text = read_notebook(text).program()
            except NotebookError:
                return None
        try:
            tree = parse_python(text, path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        return SourceModule(text, _display(path), tree)

    def fingerprint(self, module: SourceModule) -> str:
        return hashlib.blake2b(module.source.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    # -------------------------------------------------------------------------------------- resolution

    def resolve(self, importer: SourceModule, target: ImportTarget) -> Optional[tuple[SourceModule, Optional[str]]]:
        """(module, attribute) an import of ``importer`` refers to in the project; None for anything else.

        ``from a.b import c`` is the module ``a/b/c.py`` when it exists, else the name ``c`` of ``a/b.py``.
        """
        if not target.level and target.module.split(".", 1)[0] in TRACKED_PACKAGES:
            return None
        bases = self._bases(importer, target.level)
        if not bases:
            return None
        parts = [part for part in target.module.split(".") if part]
        if target.name is not None:
            submodule = self._find(bases, [*parts, target.name])
            if submodule is not None:
                return submodule, None
            if not parts:
                # `from . import x` where x is no module: a name of the package's __init__.
                package = self._find(bases, [])
                return (package, target.name) if package is not None else None
        module = self._find(bases, parts)
        if module is None:
            return None
        return module, target.name

    def resolve_submodule(self, package: SourceModule, name: str) -> Optional[SourceModule]:
        if os.path.basename(package.filename) != "__init__.py":
            return None
        return self._file(os.path.dirname(os.path.abspath(package.filename)), [name])

    def _bases(self, importer: SourceModule, level: int) -> list[str]:
        here = os.path.dirname(os.path.abspath(importer.filename))
        if level:
            for _ in range(level - 1):
                here = os.path.dirname(here)
            return [here]
        # The importing file's directory, the top of its package, each root, and the `src/` layout under it.
        bases = [here, _package_top(here), *self.roots, *(os.path.join(root, "src") for root in self.roots)]
        unique: list[str] = []
        for base in bases:
            if base not in unique:
                unique.append(base)
        return unique

    def _find(self, bases: list[str], parts: list[str]) -> Optional[SourceModule]:
        for base in bases:
            found = self._file(base, parts)
            if found is not None:
                return found
        return None

    def _file(self, base: str, parts: list[str]) -> Optional[SourceModule]:
        key = (base, ".".join(parts))
        if key not in self._found:
            self._found[key] = _module_file(base, parts)
        path = self._found[key]
        return self.module_at(path) if path is not None else None


def _module_file(base: str, parts: list[str]) -> Optional[str]:
    directory = os.path.join(base, *parts)
    candidates = [os.path.join(directory, "__init__.py")]
    if parts:
        candidates.insert(0, directory + ".py")
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return None


def _package_top(directory: str) -> str:
    """The directory above the outermost package containing ``directory`` (where absolute imports start)."""
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory


def _display(path: str) -> str:
    """The path as users see it: relative to the working directory when below it."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:
        return absolute
    return absolute if relative.startswith(os.pardir) else relative.replace(os.sep, "/")
