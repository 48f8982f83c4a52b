"""Checks a SchemaSpec that came from outside before anything renders it.

A SchemaSpec from a language model or a task's `schema` block is only as good
as its sender. Pydantic checks its shape; this module checks what the shape
cannot say: every name is one PostgreSQL can hold, names are unique where the
database needs them unique, and every key, index and type refers to something
the spec defines. A spec that passes renders into an importable models.py.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from pydantic import BaseModel, ValidationError

from sparc.agents.hephaestus.spec import ColumnType, SchemaSpec, Table
from sparc.errors import InputError

__all__ = [
    "MAX_ARRAY_DIMENSIONS",
    "MAX_IDENTIFIER_BYTES",
    "MAX_SPEC_JSON_BYTES",
    "check_names",
    "check_spec",
    "spec_from_json",
]

# PostgreSQL keeps the first 63 bytes of a name (NAMEDATALEN - 1); a longer
# one would silently become another name.
MAX_IDENTIFIER_BYTES = 63
# PostgreSQL's MAXDIM.
MAX_ARRAY_DIMENSIONS = 6
MAX_SPEC_JSON_BYTES = 1024 * 1024


def spec_from_json(text: str | bytes, *, source: str) -> SchemaSpec:
    """Read a SchemaSpec from JSON (a model's structured output) and check it.

    Args:
        text: the JSON document.
        source: how errors name the document, for example "model output".

    Returns:
        The validated spec (see `check_spec`).

    Raises:
        InputError: the document is over 1 MiB, is not JSON, does not have
            the SchemaSpec's shape (the first problem is named with its field),
            or fails `check_spec`.
    """
    size = len(text.encode("utf-8") if isinstance(text, str) else text)
    if size > MAX_SPEC_JSON_BYTES:
        raise InputError(
            f"the schema is {size} bytes, over the {MAX_SPEC_JSON_BYTES} byte "
            "limit; send a smaller schema",
            path=source,
        )
    try:
        spec = SchemaSpec.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        error = errors[0]
        field = _dotted(error["loc"]) or "schema"
        if error["type"] == "extra_forbidden":
            problem = "unknown field; remove it or check its spelling"
        elif error["type"] == "json_invalid":
            raise InputError(
                f"not valid JSON: {error['ctx']['error']}", path=source
            ) from None
        else:
            problem = str(error["msg"]).removeprefix("Value error, ")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(
            f"{field}: {problem}{more}", path=source, field=field
        ) from None
    return check_spec(spec, source=source)


def _dotted(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def check_spec(spec: SchemaSpec, *, source: str) -> SchemaSpec:
    """Refuse a spec whose names or references a database could not carry.

    Args:
        spec: the spec to check.
        source: how errors name where the spec came from (a file, "model output").

    Returns:
        The same spec, so a caller can write `spec = check_spec(...)`.

    Raises:
        InputError: a name is empty, longer than 63 bytes or holds a control
            character; two tables, types, columns, constraints or indexes share
            a name; a key, index or foreign key names a column or table that
            does not exist; a column uses an enum or domain the spec lacks; or
            a length, precision or array dimension is out of range. The
            message names the field and the offending value.
    """
    types = _check_types(spec, source)
    tables = {table.name: table for table in spec.tables}
    _refuse_duplicates(
        [(f"tables[{i}].name", table.name) for i, table in enumerate(spec.tables)],
        source,
        "table",
    )
    for index, table in enumerate(spec.tables):
        _check_table(table, f"tables[{index}]", tables, types, source)
    return spec


# Fields of the SchemaSpec models that hold names (or lists of names).
_NAME_FIELDS = frozenset(
    {"name", "ref_table", "parent", "column", "columns", "ref_columns", "include"}
)


def check_names(
    spec: SchemaSpec, *, source: str, error: type[InputError] = InputError
) -> SchemaSpec:
    """Refuse control characters (line breaks included) in any name of `spec`.

    Generated files carry names in comments and strings; a line break in a
    name would end a comment and turn the rest of the name into code.

    Args:
        spec: the spec to check.
        source: how errors name where the spec came from.
        error: the InputError subclass to raise (DDLError for DDL).

    Raises:
        InputError: (or `error`) a name holds a control character; the
            message names its field and value.
    """
    for field, name in _names(spec, ""):
        _check_characters(name, field, source, error)
    return spec


def _names(node: object, where: str) -> Iterable[tuple[str, str]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _names(item, f"{where}[{index}]")
        return
    if not isinstance(node, BaseModel):
        return
    for key in type(node).model_fields:
        value = getattr(node, key)
        field = f"{where}.{key}" if where else key
        if key in _NAME_FIELDS and isinstance(value, str):
            yield field, value
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if key in _NAME_FIELDS and isinstance(item, str):
                    yield f"{field}[{index}]", item
                else:
                    yield from _names(item, f"{field}[{index}]")
        elif isinstance(value, BaseModel):
            yield from _names(value, field)


def _refuse_duplicates(
    named: Iterable[tuple[str, str]], source: str, what: str
) -> None:
    """Each (field, name) must be a valid name, and no name may come twice."""
    seen: dict[str, str] = {}
    for field, name in named:
        _check_name(name, field, source)
        if name in seen:
            raise InputError(
                f"{field}: {what} {name!r} is defined twice (first at "
                f"{seen[name]}); give each {what} its own name",
                path=source,
                field=field,
            )
        seen[name] = field


def _check_name(name: str, field: str, source: str) -> None:
    if not name:
        raise InputError(
            f"{field}: empty name; give it a name", path=source, field=field
        )
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise InputError(
            f"{field}: {name[:40]!r}... is longer than {MAX_IDENTIFIER_BYTES} bytes, "
            "which PostgreSQL would cut short; use a shorter name",
            path=source,
            field=field,
        )
    _check_characters(name, field, source)


def _check_characters(
    name: str, field: str, source: str, error: type[InputError] = InputError
) -> None:
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            raise error(
                f"{field}: {name!r} holds the control character "
                f"U+{ord(char):04X}; use printable characters",
                path=source,
                field=field,
            )


def _check_types(spec: SchemaSpec, source: str) -> set[str]:
    _refuse_duplicates(
        [(f"enums[{i}].name", enum.name) for i, enum in enumerate(spec.enums)]
        + [(f"domains[{i}].name", dom.name) for i, dom in enumerate(spec.domains)],
        source,
        "type",
    )
    for index, enum in enumerate(spec.enums):
        field = f"enums[{index}].values"
        if not enum.values:
            raise InputError(
                f"{field}: enum {enum.name!r} has no values; list at least one",
                path=source,
                field=field,
            )
        seen: set[str] = set()
        for value in enum.values:
            if value in seen:
                raise InputError(
                    f"{field}: enum {enum.name!r} lists {value!r} twice",
                    path=source,
                    field=field,
                )
            seen.add(value)
    names = {enum.name for enum in spec.enums} | {dom.name for dom in spec.domains}
    for index, domain in enumerate(spec.domains):
        _check_type(domain.type, f"domains[{index}].type", names, source)
    return names


def _check_table(
    table: Table,
    where: str,
    tables: dict[str, Table],
    types: set[str],
    source: str,
) -> None:
    if not table.columns:
        raise InputError(
            f"{where}.columns: table {table.name!r} has no columns; give it one",
            path=source,
            field=f"{where}.columns",
        )
    _refuse_duplicates(
        [
            (f"{where}.columns[{i}].name", column.name)
            for i, column in enumerate(table.columns)
        ],
        source,
        "column",
    )
    for index, column in enumerate(table.columns):
        _check_type(column.type, f"{where}.columns[{index}].type", types, source)

    columns = {column.name for column in table.columns}
    keyed: list[tuple[str, list[str]]] = []
    if table.primary_key is not None:
        keyed.append((f"{where}.primary_key.columns", table.primary_key.columns))
    keyed += [
        (f"{where}.unique_constraints[{i}].columns", unique.columns)
        for i, unique in enumerate(table.unique_constraints)
    ]
    keyed += [
        (f"{where}.foreign_keys[{i}].columns", fk.columns)
        for i, fk in enumerate(table.foreign_keys)
    ]
    keyed += [
        (
            f"{where}.indexes[{i}].elements",
            [e.column for e in index.elements if e.column],
        )
        for i, index in enumerate(table.indexes)
    ]
    for field, names in keyed:
        _check_columns(names, columns, table.name, field, source)

    for index, fk in enumerate(table.foreign_keys):
        field = f"{where}.foreign_keys[{index}]"
        target = tables.get(fk.ref_table)
        if target is None:
            raise InputError(
                f"{field}.ref_table: table {fk.ref_table!r} is not in the schema; "
                "define it or remove the foreign key",
                path=source,
                field=f"{field}.ref_table",
            )
        if len(fk.ref_columns) != len(fk.columns):
            raise InputError(
                f"{field}: {len(fk.columns)} column(s) refer to "
                f"{len(fk.ref_columns)}; list as many of each",
                path=source,
                field=field,
            )
        _check_columns(
            fk.ref_columns,
            {column.name for column in target.columns},
            target.name,
            f"{field}.ref_columns",
            source,
        )

    constraint_names = [
        (f"{where}.{kind}[{i}].name", item.name)
        for kind, items in (
            ("unique_constraints", table.unique_constraints),
            ("check_constraints", table.check_constraints),
            ("foreign_keys", table.foreign_keys),
        )
        for i, item in enumerate(items)
        if item.name is not None
    ]
    if table.primary_key is not None and table.primary_key.name is not None:
        constraint_names.append((f"{where}.primary_key.name", table.primary_key.name))
    _refuse_duplicates(constraint_names, source, "constraint")
    _refuse_duplicates(
        [
            (f"{where}.indexes[{i}].name", index.name)
            for i, index in enumerate(table.indexes)
        ],
        source,
        "index",
    )


def _check_columns(
    names: list[str], columns: set[str], table: str, field: str, source: str
) -> None:
    if not names and not field.endswith(".elements"):
        raise InputError(
            f"{field}: lists no column; name at least one", path=source, field=field
        )
    for name in names:
        if name not in columns:
            raise InputError(
                f"{field}: table {table!r} has no column {name!r}",
                path=source,
                field=field,
            )


def _check_type(
    column_type: ColumnType, field: str, types: set[str], source: str
) -> None:
    if column_type.kind in ("enum", "domain") and column_type.name not in types:
        raise InputError(
            f"{field}.name: {column_type.kind} {column_type.name!r} is not defined "
            f"in the schema; add it to {column_type.kind}s",
            path=source,
            field=f"{field}.name",
        )
    for attribute in ("length", "precision"):
        value = getattr(column_type, attribute)
        if value is not None and not 0 < value <= 10_485_760:
            raise InputError(
                f"{field}.{attribute}: {value} is out of range; use a positive number",
                path=source,
                field=f"{field}.{attribute}",
            )
    if column_type.scale is not None and not 0 <= column_type.scale <= 1000:
        raise InputError(
            f"{field}.scale: {column_type.scale} is out of range (0 to 1000)",
            path=source,
            field=f"{field}.scale",
        )
    if not 0 <= column_type.dimensions <= MAX_ARRAY_DIMENSIONS:
        raise InputError(
            f"{field}.dimensions: {column_type.dimensions} is out of range; "
            f"PostgreSQL arrays have 0 to {MAX_ARRAY_DIMENSIONS} dimensions",
            path=source,
            field=f"{field}.dimensions",
        )
