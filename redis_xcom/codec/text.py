"""A large ASCII string as a read-only view of its own characters: written without a UTF-8 copy.

CPython stores a pure-ASCII ``str`` as one byte per character, and those bytes are its UTF-8
encoding: ``PyUnicode_AsUTF8AndSize`` (stable C API) returns them without copying for such a
string. Packing a 50 MB string the usual way makes a second 50 MB (msgpack's output) that lives
until Redis has it, so a producer peaked at twice its value; with the view it peaks at about the
value itself, and the pack's copy is gone from the push as well.

Anything else (another interpreter, a non-ASCII string, whose UTF-8 CPython would build and keep
for the string's whole life, a ``str`` subclass) gets None, and the caller packs it as usual.
"""

from __future__ import annotations

import ctypes
import struct
import sys

# msgpack's str 32 header: 0xdb, then the length in 4 big-endian bytes (what ormsgpack writes too).
STR32 = struct.Struct(">BI")
STR32_MAX = (1 << 32) - 1

_CPYTHON = sys.implementation.name == "cpython"


def _utf8_of() -> object:
    function = ctypes.pythonapi.PyUnicode_AsUTF8AndSize
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.py_object, ctypes.POINTER(ctypes.c_ssize_t)]
    return function


_AS_UTF8 = _utf8_of() if _CPYTHON else None


def ascii_view(text: str) -> memoryview | None:
    """The bytes of an ASCII ``str`` as a read-only memoryview that keeps the string alive, or
    None where that cannot be had without a copy."""
    if _AS_UTF8 is None or type(text) is not str or not text.isascii():
        return None
    size = ctypes.c_ssize_t()
    address = _AS_UTF8(text, ctypes.byref(size))  # type: ignore[operator]
    if not address or size.value != len(text):
        return None
    chars = (ctypes.c_char * size.value).from_address(address)
    chars.owner = text  # type: ignore[attr-defined]  # the view's exporter holds the string
    # Read-only: the characters belong to an immutable str.
    return memoryview(chars).cast("B").toreadonly()


def msgpack_str_parts(text: str) -> list[bytes | memoryview] | None:
    """The msgpack encoding of text as [header, characters], byte for byte what a msgpack packer
    writes for a string of this size, or None (see ``ascii_view``)."""
    if not 0xFFFF < len(text) <= STR32_MAX:
        return None  # shorter strings have shorter headers; they are cheap to copy anyway
    view = ascii_view(text)
    if view is None:
        return None
    return [STR32.pack(0xDB, len(text)), view]
