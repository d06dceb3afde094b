"""A whole XCom value as JSON, for download, where JSON can represent it."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import pathlib
import uuid
from typing import Any

from redis_xcom.codec import SerializedForm


class NotRepresentable(TypeError):
    """The value holds something JSON cannot carry faithfully."""


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


def to_json(value: Any) -> str:
    """JSON text of value; NotRepresentable names what JSON cannot carry (NaN, infinity, a class)."""
    try:
        return json.dumps(value, default=_default, ensure_ascii=False, allow_nan=False, indent=1)
    except NotRepresentable:
        raise
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotRepresentable(f"{type(exc).__name__}: {exc}") from exc
