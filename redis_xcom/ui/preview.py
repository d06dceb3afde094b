"""A decoded XCom value -> a preview people can read, never longer than a byte budget.

Plain data is shown as indented JSON; datetimes, Decimals, tuples and sets keep their own notation
(their repr, inside the same layout); bytes as their size and a hex head; pandas/polars DataFrames
and Arrow tables as their first rows with shape and dtypes; numpy arrays as shape, dtype and head.
Nothing here imports a scientific library: a value of such a type means it is already imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from redis_xcom.codec import SerializedForm

# Rows of a table shown, and the elements of an array's head.
TABLE_ROWS = 20
ARRAY_HEAD = 20
HEX_HEAD_BYTES = 256
# One table cell is cut at this many characters: a long text must not hide the other columns.
CELL_CHARS = 200
_PLAIN_LEAVES = (str, int, float, bool, type(None))


@dataclass
class Preview:
    """What the page and the JSON API show of one value."""

    type: str
    kind: str  # "json" | "text" | "bytes" | "table" | "array"
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    shape: list[int] = field(default_factory=list)
    dtypes: dict[str, str] = field(default_factory=dict)
    truncated: bool = False

    @classmethod
    def from_json(cls, data: Any) -> Preview:
        """A preview as as_json() wrote it (a sandbox worker's reply); ValueError for any other shape."""
        if not isinstance(data, dict) or set(data) != _FIELDS:
            raise ValueError("a preview must be an object of the preview's fields")
        checks = (
            isinstance(data["type"], str),
            data["kind"] in _KINDS,
            isinstance(data["text"], str),
            _strings(data["columns"]),
            isinstance(data["rows"], list) and all(_strings(row) for row in data["rows"]),
            isinstance(data["shape"], list) and all(type(n) is int for n in data["shape"]),
            isinstance(data["dtypes"], dict) and _strings([*data["dtypes"], *data["dtypes"].values()]),
            type(data["truncated"]) is bool,
        )
        if not all(checks):
            raise ValueError("a preview's fields must have the preview's types")
        return cls(**data)

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "kind": self.kind,
            "text": self.text,
            "columns": self.columns,
            "rows": self.rows,
            "shape": self.shape,
            "dtypes": self.dtypes,
            "truncated": self.truncated,
        }


_FIELDS = frozenset({"type", "kind", "text", "columns", "rows", "shape", "dtypes", "truncated"})
_KINDS = frozenset({"json", "text", "bytes", "table", "array"})


def _strings(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(item, str) for item in items)


def type_name(value: object) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module.split('.')[0]}.{cls.__qualname__}"


def preview(value: object, budget: int) -> Preview:
    """A preview of value whose text (or table cells) hold at most about budget bytes of UTF-8."""
    if isinstance(value, SerializedForm):
        # Shown as Airflow's serde wrote it: the API server imports and runs no user class.
        shown = {"__classname__": value.classname, "__version__": value.version, "__data__": value.data}
        text, truncated = _bounded(_render(shown, 0), budget)
        return Preview(f"{value.classname} (serialized)", "text", text, truncated=truncated)
    name = type_name(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes_preview(name, bytes(value[:HEX_HEAD_BYTES]), len(value), budget)
    module = type(value).__module__.split(".")[0]
    if module in ("pandas", "polars", "pyarrow") and hasattr(value, "shape"):
        return _table_preview(name, value, budget)
    if module == "numpy" and hasattr(value, "dtype") and hasattr(value, "shape"):
        return _array_preview(name, value, budget)
    if _is_plain(value):
        text, truncated = _bounded(json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(value), budget)
        return Preview(name, "json", text, truncated=truncated)
    text, truncated = _bounded(_render(value, 0), budget)
    return Preview(name, "text", text, truncated=truncated)


def _is_plain(value: object, depth: int = 0) -> bool:
    """JSON data: str-keyed dicts, lists, str, finite or not numbers, bool, None (checked to a depth)."""
    if depth > 100:
        return False
    if type(value) in _PLAIN_LEAVES:
        return True
    if type(value) is list:
        return all(_is_plain(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _bounded(chunks: Any, budget: int) -> tuple[str, bool]:
    """Join text chunks up to budget bytes (UTF-8); stops pulling chunks once it is reached."""
    out: list[str] = []
    used = 0
    for chunk in chunks:
        size = len(chunk.encode("utf-8", errors="replace"))
        if used + size > budget:
            cut = chunk.encode("utf-8", errors="replace")[: budget - used].decode("utf-8", errors="ignore")
            out.append(cut)
            return "".join(out), True
        out.append(chunk)
        used += size
    return "".join(out), False


def _render(value: object, indent: int) -> Any:
    """The JSON layout, with each non-JSON value written as Python writes it (tuples, sets, repr)."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        yield "{\n"
        for i, (k, v) in enumerate(value.items()):
            yield inner
            yield json.dumps(k, ensure_ascii=False) if type(k) is str else "".join(_render(k, indent + 1))
            yield ": "
            yield from _render(v, indent + 1)
            yield ",\n" if i < len(value) - 1 else "\n"
        yield pad + "}"
        return
    brackets = _BRACKETS.get(type(value))
    if brackets is not None:
        container: Any = value
        items = sorted(container, key=repr) if isinstance(value, set | frozenset) else list(container)
        if not items:
            yield _EMPTY[type(value)]
            return
        opening, closing = brackets
        yield opening + "\n"
        for i, item in enumerate(items):
            yield inner
            yield from _render(item, indent + 1)
            yield ",\n" if i < len(items) - 1 or (type(value) is tuple and len(items) == 1) else "\n"
        yield pad + closing
        return
    if type(value) in _PLAIN_LEAVES:
        yield json.dumps(value, ensure_ascii=False)
        return
    yield repr(value)


_EMPTY: dict[type, str] = {list: "[]", tuple: "()", set: "set()", frozenset: "frozenset()"}
_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
}


def _bytes_preview(name: str, head: bytes, size: int, budget: int) -> Preview:
    lines = []
    for offset in range(0, len(head), 16):
        row = head[offset : offset + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset:08x}  {row.hex(' '):<47}  {text}")
    body, truncated = _bounded([line + "\n" for line in lines], budget)
    shown = f" (the first {len(head)} shown)" if size > len(head) else ""
    return Preview(name, "bytes", f"{size} bytes{shown}\n{body}", truncated=truncated)


def _cell(value: object) -> str:
    text = str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _table_preview(name: str, table: Any, budget: int) -> Preview:
    """First rows of a DataFrame or Arrow table, with its shape and column types."""
    module = type(table).__module__.split(".")[0]
    shape = [int(n) for n in table.shape]
    if module == "pyarrow":
        head = table.slice(0, TABLE_ROWS).to_pylist()
        columns = [str(c) for c in table.column_names]
        dtypes = {str(f.name): str(f.type) for f in table.schema}
        rows = [[_cell(row[c]) for c in table.column_names] for row in head]
    elif module == "polars":
        head_frame = table.head(TABLE_ROWS)
        columns = [str(c) for c in table.columns]
        dtypes = {str(c): str(t) for c, t in zip(table.columns, table.dtypes, strict=True)}
        rows = [[_cell(v) for v in row] for row in head_frame.iter_rows()]
    else:  # pandas: a Series is shown as a one-column table
        frame = table.to_frame() if table.ndim == 1 else table
        head_frame = frame.head(TABLE_ROWS)
        columns = [str(c) for c in frame.columns]
        dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
        rows = [[_cell(v) for v in row] for row in head_frame.itertuples(index=False, name=None)]
    kept, used = [], 0
    for row in rows:
        used += sum(len(c.encode("utf-8", errors="replace")) for c in row)
        if used > budget:
            break
        kept.append(row)
    truncated = len(kept) < shape[0]
    return Preview(name, "table", columns=columns, rows=kept, shape=shape, dtypes=dtypes, truncated=truncated)


def _array_preview(name: str, array: Any, budget: int) -> Preview:
    """Shape, dtype and the first elements (of the flattened array) of a numpy array or scalar."""
    shape = [int(n) for n in getattr(array, "shape", ())]
    flat = array.reshape(-1) if shape else array.reshape(1)
    head = flat[:ARRAY_HEAD]
    text, truncated = _bounded([repr(head.tolist())], budget)
    return Preview(
        name,
        "array",
        text,
        shape=shape,
        dtypes={"dtype": str(array.dtype)},
        truncated=truncated or flat.size > ARRAY_HEAD,
    )
