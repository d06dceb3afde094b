"""What an Arrow table costs once materialized, read from its buffers, offsets and sizes alone.

A column's stored bytes can be used by many of its elements: string and binary views point into
shared buffers, list views and dense unions at overlapping child ranges, run-end encoding repeats a
value, a dictionary below the top level is decoded per index; converting such a column (to_pandas,
to_pylist) writes out every use. So the bound is not a list of types but one rule: a slot costs one
unit for its element plus its data bytes, summed through every child value it reaches, which is
about what materializing it costs whatever its layout. Tables are costed before full validation
(which would itself read every view): only the buffers' sizes are trusted here (``validate()``),
and every offset, size and index read from them is checked before it is used.

Top-level dictionary columns count their indices and their dictionary once: pandas, polars and the
Arrow table keep them encoded (categoricals). A type this module does not know is refused.
"""

from __future__ import annotations

import struct
from typing import Any

from redis_xcom.errors import CorruptPayloadError, DecodeLimitError, UnsupportedFormatError

# Per-slot costs: an int when every slot costs the same, else an int64 array (one per slot).
Slots = Any


def table_cost(pa: Any, pc: Any, table: Any) -> int:
    """Units a table materializes: elements plus data bytes, through views and encodings."""
    try:
        cells = sum(_total(pa, pc, chunk, top=True) for column in table.columns for chunk in column.chunks)
    except (pa.ArrowException, OverflowError) as exc:
        if "overflow" in str(exc).lower():
            raise DecodeLimitError(
                f"an Arrow table's materialized size overflows 64 bits: refused ({exc})"
            ) from exc
        raise CorruptPayloadError(f"malformed Arrow offsets, sizes or indices ({exc})") from exc
    # Rows count even without columns: to_pylist() and to_pandas() build one per row.
    return max(table.num_rows, cells)


def refuse_compressed_ipc(pa: Any, buf: Any) -> None:
    """Refuse an IPC stream whose record batches are compressed, before reading it.

    Reading inflates every buffer to the size it records, which the stream's writer chooses: a few
    KB can claim gigabytes. redis-xcom never writes compressed IPC (the envelope compresses).
    """
    try:
        for message in pa.ipc.MessageReader.open_stream(pa.py_buffer(buf)):
            if message.type in ("record batch", "dictionary") and _compressed(message.metadata.to_pybytes()):
                raise DecodeLimitError(
                    "an Arrow IPC stream with compressed buffers: refused before reading, since its "
                    "buffers inflate to sizes the stream itself claims (redis-xcom never writes one)"
                )
    except (struct.error, IndexError) as exc:
        raise CorruptPayloadError(f"malformed Arrow IPC message ({exc})") from exc


def _compressed(meta: bytes) -> bool:
    """Whether a Message flatbuffer (Arrow's Message.fbs) holds a RecordBatch with compression."""
    message = _table(meta, 0)
    header_type = _field(meta, message, 1)
    header = _field(meta, message, 2)
    if header_type is None or header is None:
        return False
    batch = _table(meta, header)
    if meta[header_type] == 2:  # DictionaryBatch: its field 1 is the RecordBatch
        data = _field(meta, batch, 1)
        if data is None:
            return False
        batch = _table(meta, data)
    elif meta[header_type] != 3:  # not a RecordBatch
        return False
    return _field(meta, batch, 3) is not None  # RecordBatch.compression


def _table(buf: bytes, at: int) -> int:
    """The table an offset (uoffset_t) at `at` points to."""
    return at + int(struct.unpack_from("<I", buf, at)[0])


def _field(buf: bytes, table: int, index: int) -> int | None:
    """Where field `index` of a flatbuffer table sits, or None when it is absent."""
    vtable = table - int(struct.unpack_from("<i", buf, table)[0])
    vtable_size = int(struct.unpack_from("<H", buf, vtable)[0])
    slot = 4 + 2 * index
    if slot + 2 > vtable_size:
        return None
    offset = int(struct.unpack_from("<H", buf, vtable + slot)[0])
    return table + offset if offset else None


def _total(pa: Any, pc: Any, array: Any, top: bool = False) -> int:
    """Cost of all slots of array (as sliced)."""
    kind, n, types = array.type, len(array), pa.types
    if isinstance(kind, pa.BaseExtensionType):
        return _total(pa, pc, array.storage, top)
    if types.is_dictionary(kind):
        if top:
            return _total(pa, pc, array.indices) + _total(pa, pc, array.dictionary)
        return _sum(pc, _slots(pa, pc, array), n)
    if _is(types, "run_end_encoded", kind):
        return _run_end_total(pa, pc, array)
    if _is_binary(types, kind):
        offsets = _ints(pa, array, 1, _offset_type(pa, kind), n + 1)
        first, last = offsets[0].as_py(), offsets[n].as_py()
        if not 0 <= first <= last:
            raise CorruptPayloadError("malformed Arrow binary offsets")
        return n + last - first
    if _is_view(types, kind) or _is_list_view(types, kind):
        return _sum(pc, _slots(pa, pc, array), n)
    if types.is_list(kind) or types.is_large_list(kind) or types.is_map(kind):
        offsets = _ints(pa, array, 1, _offset_type(pa, kind), n + 1)
        first, last = offsets[0].as_py(), offsets[n].as_py()
        child = array.values
        if not 0 <= first <= last <= len(child):
            raise CorruptPayloadError("malformed Arrow list offsets")
        return n + _total(pa, pc, child.slice(first, last - first))
    if types.is_fixed_size_list(kind):
        size, child = kind.list_size, array.values
        start = array.offset * size
        if start + n * size > len(child):
            raise CorruptPayloadError("malformed Arrow fixed-size list")
        return n + _total(pa, pc, child.slice(start, n * size))
    if types.is_struct(kind):
        return n + sum(_total(pa, pc, array.field(i)) for i in range(kind.num_fields))
    if types.is_union(kind):
        return _sum(pc, _slots(pa, pc, array), n)
    return n * _fixed_slot(pa, kind)


def _slots(pa: Any, pc: Any, array: Any) -> Slots:
    """Cost of each slot of array: for a parent that reaches its slots out of order or repeatedly."""
    kind, n, types = array.type, len(array), pa.types
    if isinstance(kind, pa.BaseExtensionType):
        return _slots(pa, pc, array.storage)
    if types.is_dictionary(kind):
        inner = _slots(pa, pc, array.dictionary)
        if isinstance(inner, int):
            return inner
        # Out-of-range indices raise here (ArrowIndexError): the table is malformed.
        return pc.fill_null(pc.take(inner, array.indices), 1)
    if _is(types, "run_end_encoded", kind):
        # Each slot costs at most the dearest value (exotic below a view; exact at the top level).
        return _max(pc, _slots(pa, pc, array.values))
    if types.is_union(kind):
        # A dense union's slot reaches one child; a sparse union's, at most all of them.
        dearest = [_max(pc, _slots(pa, pc, array.field(i))) for i in range(kind.num_fields)]
        return 1 + (max(dearest, default=0) if kind.mode == "dense" else sum(dearest))
    if _is_binary(types, kind):
        offsets = _ints(pa, array, 1, _offset_type(pa, kind), n + 1)
        return _plus_one(pc, _nonnegative(pc, pc.subtract(offsets.slice(1), offsets.slice(0, n)), "offsets"))
    if _is_view(types, kind):
        views = _ints(pa, array, 1, pa.int32(), 4 * n, scale=4)
        lengths = pc.list_element(pa.FixedSizeListArray.from_arrays(views, 4), 0)
        return _plus_one(pc, _nonnegative(pc, lengths, "view lengths"))
    if types.is_list(kind) or types.is_large_list(kind) or types.is_map(kind):
        offsets = _ints(pa, array, 1, _offset_type(pa, kind), n + 1)
        return _ranges(pa, pc, array.values, offsets.slice(0, n), offsets.slice(1))
    if _is_list_view(types, kind):
        itype = _offset_type(pa, kind)
        starts = _nonnegative(pc, _ints(pa, array, 1, itype, n), "list view offsets")
        sizes = _nonnegative(pc, _ints(pa, array, 2, itype, n), "list view sizes")
        return _ranges(pa, pc, array.values, starts, pc.add_checked(starts, sizes))
    if types.is_fixed_size_list(kind):
        size = kind.list_size
        child = array.values.slice(array.offset * size, n * size)
        if len(child) != n * size:
            raise CorruptPayloadError("malformed Arrow fixed-size list")
        return 1 + size * _max(pc, _slots(pa, pc, child))
    if types.is_struct(kind):
        cost: Slots = 1
        for i in range(kind.num_fields):
            field = _slots(pa, pc, array.field(i))
            cost = cost + field if isinstance(cost, int) and isinstance(field, int) else _add(pc, cost, field)
        return cost
    return _fixed_slot(pa, kind)


def _ranges(pa: Any, pc: Any, child: Any, starts: Any, ends: Any) -> Slots:
    """Per slot: 1 plus the cost of child[start:end], for (possibly overlapping) ranges."""
    if len(starts) and _max(pc, ends) > len(child):
        raise CorruptPayloadError("Arrow list offsets point past the end of their values")
    inner = _slots(pa, pc, child)
    if isinstance(inner, int):
        return _plus_one(pc, pc.multiply_checked(pc.subtract_checked(ends, starts), inner))
    # Prefix sums of the child's costs: a range costs the difference of two of them.
    prefix = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum_checked(inner)])
    return _plus_one(pc, pc.subtract_checked(pc.take(prefix, ends), pc.take(prefix, starts)))


def _run_end_total(pa: Any, pc: Any, array: Any) -> int:
    """Each run costs its length times the value it repeats."""
    run_ends, values, start, n = array.run_ends, array.values, array.offset, len(array)
    if len(values) < len(run_ends):
        raise CorruptPayloadError("malformed Arrow run-end encoding")
    if not n or not len(run_ends):
        return n
    ends = pc.min_element_wise(pc.max_element_wise(pc.cast(run_ends, pa.int64()), start), start + n)
    begins = pa.concat_arrays([pa.array([start], pa.int64()), ends.slice(0, len(ends) - 1)])
    lengths = _nonnegative(pc, pc.subtract(ends, begins), "run ends")
    inner = _slots(pa, pc, values.slice(0, len(run_ends)))
    if isinstance(inner, int):
        return n * inner
    return int(pc.sum(pc.multiply_checked(lengths, inner)).as_py() or 0)


def _is(types: Any, name: str, kind: Any) -> bool:
    """pa.types.is_<name>(kind), False where this pyarrow predates the type."""
    return bool(getattr(types, f"is_{name}", lambda _: False)(kind))


def _is_binary(types: Any, kind: Any) -> bool:
    return bool(types.is_binary(kind) or types.is_string(kind) or _is_large_binary(types, kind))


def _is_large_binary(types: Any, kind: Any) -> bool:
    return bool(types.is_large_binary(kind) or types.is_large_string(kind))


def _is_view(types: Any, kind: Any) -> bool:
    return _is(types, "binary_view", kind) or _is(types, "string_view", kind)


def _is_list_view(types: Any, kind: Any) -> bool:
    return _is(types, "list_view", kind) or _is(types, "large_list_view", kind)


def _offset_type(pa: Any, kind: Any) -> Any:
    types = pa.types
    large = (
        types.is_large_binary(kind)
        or types.is_large_string(kind)
        or types.is_large_list(kind)
        or _is(types, "large_list_view", kind)
    )
    return pa.int64() if large else pa.int32()


def _fixed_slot(pa: Any, kind: Any) -> int:
    """1 + the bytes of a fixed-width value (null and bool: 1); unknown layouts are refused."""
    if pa.types.is_null(kind) or pa.types.is_boolean(kind):
        return 1
    try:
        return 1 + int(kind.bit_width) // 8
    except ValueError:
        raise UnsupportedFormatError(
            f"Arrow type {kind} is not one this reader can bound: not decoded"
        ) from None


def _ints(pa: Any, array: Any, index: int, itype: Any, count: int, scale: int = 1) -> Any:
    """count ints of type itype from the array's own buffer `index`, from its offset on (times scale)."""
    buffer = array.buffers()[index]
    start = array.offset * scale
    width = itype.bit_width // 8
    if buffer is None or buffer.size < (start + count) * width:
        if count == 0:
            return pa.array([], itype)
        raise CorruptPayloadError("an Arrow buffer is shorter than its array")
    return pa.Array.from_buffers(itype, count, [None, buffer], offset=start).cast(pa.int64())


def _nonnegative(pc: Any, ints: Any, what: str) -> Any:
    if len(ints) and (pc.min(ints).as_py() or 0) < 0:
        raise CorruptPayloadError(f"negative Arrow {what}")
    return ints


def _plus_one(pc: Any, ints: Any) -> Any:
    return pc.add_checked(ints, 1)


def _add(pc: Any, a: Slots, b: Slots) -> Any:
    return pc.add_checked(a, b)


def _sum(pc: Any, slots: Slots, n: int) -> int:
    if isinstance(slots, int):
        return slots * n
    return int(pc.sum(slots).as_py() or 0)


def _max(pc: Any, slots: Slots) -> int:
    if isinstance(slots, int):
        return slots
    return int(pc.max(slots).as_py() or 0)
