"""A whole XCom value as JSON, for download, where JSON can represent it."""

from __future__ import annotations

import base64
import datetime
import decimal
import itertools
import json
import pathlib
import uuid
from typing import Any

from redis_xcom.codec import SerializedForm

# Chunks of JSON text written between two checks of the bound (each chunk a token or a string).
_BATCH = 4096


class NotRepresentable(TypeError):
    """The value holds something JSON cannot carry faithfully."""


class OutputTooLarge(Exception):
    """The value's JSON text would be longer than the bound given: writing stopped there."""


def _default(value: Any) -> Any:
    """How each non-JSON type is written: as the text it is read from, or as its rows."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal | uuid.UUID | pathlib.PurePath):
        return str(value)  # exact: a Decimal as a float would lose digits
    if isinstance(value, SerializedForm):
        return {"__classname__": value.classname, "__version__": value.version, "__data__": value.data}
    if isinstance(value, tuple | set | frozenset):
        return sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    module = type(value).__module__.split(".")[0]
    if module == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    if module == "pandas" and hasattr(value, "to_dict"):
        frame = value.to_frame() if getattr(value, "ndim", 2) == 1 else value
        return json.loads(frame.to_json(orient="records", date_format="iso"))
    if module in ("pyarrow", "polars") and hasattr(value, "to_pylist" if module == "pyarrow" else "to_dicts"):
        return value.to_pylist() if module == "pyarrow" else value.to_dicts()
    raise NotRepresentable(f"a value of type {type(value).__module__}.{type(value).__qualname__}")


def to_json(value: Any, max_bytes: int | None = None) -> bytes:
    """UTF-8 JSON text of value; NotRepresentable names what JSON cannot carry (NaN, infinity, a
    class); OutputTooLarge once the text passes max_bytes (writing stops there, so a value whose
    JSON would be huge costs no more than max_bytes of it)."""
    encoder = json.JSONEncoder(default=_default, ensure_ascii=False, allow_nan=False, indent=1)
    chunks: list[str] = []
    written = 0
    try:
        pieces = encoder.iterencode(value)
        # Counted a batch at a time (in C): per chunk, the count would cost as much as the writing.
        while batch := list(itertools.islice(pieces, _BATCH)):
            # Characters bound UTF-8 bytes from below: past max_bytes characters the bytes are too.
            written += sum(map(len, batch))
            if max_bytes is not None and written > max_bytes:
                raise OutputTooLarge(f"its JSON is longer than {max_bytes} bytes")
            chunks.extend(batch)
    except (NotRepresentable, OutputTooLarge):
        raise
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotRepresentable(f"{type(exc).__name__}: {exc}") from exc
    body = "".join(chunks).encode("utf-8", errors="replace")  # a lone surrogate: never an error
    if max_bytes is not None and len(body) > max_bytes:
        raise OutputTooLarge(f"its JSON is {len(body)} bytes, longer than {max_bytes}")
    return body
