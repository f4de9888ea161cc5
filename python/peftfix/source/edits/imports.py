"""Import edits for fixes: find what binds a name, add a name to an import, drop an alias left unused."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional, Union

import libcst as cst

from peftfix.diagnostics import Edit
from peftfix.source.context import FileContext
from peftfix.source.edits import FixUnavailable
from peftfix.source.edits.sequences import append_element, remove_element
from peftfix.source.syntax import dotted_name


@dataclass(frozen=True)
class ImportBinding:
    statement: cst.SimpleStatementLine
    node: cst.ImportFrom
    alias: cst.ImportAlias

    @property
    def module(self) -> str:
        return (dotted_name(self.node.module) or "") if self.node.module is not None and not self.node.relative else ""

    @property
    def aliases(self) -> Sequence[cst.ImportAlias]:
        """The statement's aliases (``alias`` among them; a star import, which binds none, never gets here)."""
        names = self.node.names
        return () if isinstance(names, cst.ImportStar) else names

    @property
    def imported(self) -> str:
        return dotted_name(self.alias.name) or ""


def module_imports(ctx: FileContext) -> Iterable[ImportBinding]:
    """Every ``from x import a, b`` alias at the top level of the module."""
    for statement in ctx.module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    yield ImportBinding(statement, small, alias)


def binding_of(ctx: FileContext, local_name: str) -> Optional[ImportBinding]:
    found = [binding for binding in module_imports(ctx) if _local_name(binding.alias) == local_name]
    return found[0] if len(found) == 1 else None


def local_name_for(ctx: FileContext, module: str, name: str) -> Optional[str]:
    for binding in module_imports(ctx):
        if binding.module == module and binding.imported == name:
            return _local_name(binding.alias)
    return None


def is_unused_after(ctx: FileContext, local_name: str, removed: Iterable[cst.CSTNode]) -> bool:
    """True when every read of ``local_name`` in the file is one of the ``removed`` nodes."""
    removed_offsets = {ctx.span_of(node)[0] for node in removed}
    return all(offset in removed_offsets for offset in ctx.names.reads_of(local_name))


def rewrite_import(ctx: FileContext, binding: ImportBinding, remove: bool, add: Optional[str] = None) -> Optional[Edit]:
    """Drop ``binding``'s alias and/or add ``add`` to the same statement (in the dropped alias's place)."""
    names = list(binding.aliases)
    index = next(i for i, alias in enumerate(names) if alias is binding.alias)
    if remove and add:
        names[index] = cst.ImportAlias(name=cst.Name(add), comma=binding.alias.comma)
    elif remove:
        names = remove_element(names, index)
    elif add:
        names = append_element(names, cst.ImportAlias(name=cst.Name(add)))
    if not names:
        return ctx.delete_statement(binding.statement)
    return ctx.replace(binding.node, binding.node.with_changes(names=names))


def ensure_imported(
    ctx: FileContext, module: str, name: str, replacing: Optional[ImportBinding] = None
) -> tuple[str, list[Optional[Edit]]]:
    """Make ``name`` from ``module`` available; ``replacing`` is an alias the fix leaves unused (dropped).

    Returns the local name to use and the edits.
    """
    existing = local_name_for(ctx, module, name)
    if existing is not None:
        return existing, [rewrite_import(ctx, replacing, remove=True)] if replacing else []
    if not _is_free(ctx, name):
        # The module already uses the name for something else (a def, an assignment, another library's
        # import): importing it plainly would rebind that. Import under a free alias instead.
        return _import_as_alias(ctx, module, name, replacing)
    if replacing is not None and replacing.module == module:
        return name, [rewrite_import(ctx, replacing, remove=True, add=name)]
    target = next((b for b in module_imports(ctx) if b.module == module and b is not replacing), None)
    edits: list[Optional[Edit]] = []
    if replacing is not None:
        if len(replacing.aliases) == 1:  # the statement would vanish: turn it into the new import
            new_node = cst.ImportFrom(module=_attribute(module), names=[cst.ImportAlias(name=cst.Name(name))])
            return name, [ctx.replace(replacing.node, new_node)]
        edits.append(rewrite_import(ctx, replacing, remove=True))
    if target is not None and target.statement is not (replacing.statement if replacing else None):
        edits.append(rewrite_import(ctx, target, remove=False, add=name))
    else:
        anchor = replacing.statement if replacing is not None else _last_import(ctx)
        line = f"from {module} import {name}"
        edits.append(ctx.insert_after_statement(anchor, line) if anchor is not None else ctx.edit(0, 0, line + "\n"))
    return name, edits


def _is_free(ctx: FileContext, name: str) -> bool:
    """Whether nothing in the file binds or reads ``name`` (a read may come from a star import or a builtin)."""
    names = ctx.names
    return names.complete and not names.binds.get(name) and not names.reads.get(name)


def _free_alias(ctx: FileContext, name: str) -> str:
    for suffix in ("_", "_hf", *(f"_{number}" for number in range(2, 100))):
        if _is_free(ctx, name + suffix):
            return name + suffix
    raise FixUnavailable(f"no free name to import `{name}` under")


def _import_as_alias(
    ctx: FileContext, module: str, name: str, replacing: Optional[ImportBinding]
) -> tuple[str, list[Optional[Edit]]]:
    alias = _free_alias(ctx, name)
    new_node = cst.ImportFrom(
        module=_attribute(module),
        names=[cst.ImportAlias(name=cst.Name(name), asname=cst.AsName(name=cst.Name(alias)))],
    )
    if replacing is not None and len(replacing.aliases) == 1:  # the statement would vanish: it becomes the import
        return alias, [ctx.replace(replacing.node, new_node)]
    edits: list[Optional[Edit]] = [rewrite_import(ctx, replacing, remove=True)] if replacing is not None else []
    anchor = replacing.statement if replacing is not None else _last_import(ctx)
    line = f"from {module} import {name} as {alias}"
    edits.append(ctx.insert_after_statement(anchor, line) if anchor is not None else ctx.edit(0, 0, line + "\n"))
    return alias, edits


def _last_import(ctx: FileContext) -> Optional[cst.SimpleStatementLine]:
    last = None
    for statement in ctx.module.body:
        if isinstance(statement, cst.SimpleStatementLine) and any(
            isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
        ):
            last = statement
    return last


def _local_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return (dotted_name(alias.name) or "").split(".")[0]


def _attribute(dotted: str) -> Union[cst.Attribute, cst.Name]:
    parts = dotted.split(".")
    node: Union[cst.Attribute, cst.Name] = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node
