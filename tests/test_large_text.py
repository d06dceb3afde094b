"""A large ASCII string is written from its own characters: no second copy in the producer."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import msgpack
import pytest

from redis_xcom.codec import HEADER_SIZE, Codec
from redis_xcom.codec.text import ascii_view, msgpack_str_parts
from tests.redis_process import RedisServer

MB = 1 << 20


def csv_text(size: int) -> str:
    row = "2026-11-22,order-1234,EUR,17.50,shipped\n"
    return (row * (size // len(row) + 1))[:size]


def test_a_large_ascii_string_is_stored_as_the_same_bytes_msgpack_writes() -> None:
    text = csv_text(3 * MB)
    parts = Codec().encode_parts(text)
    assert isinstance(parts[-1], memoryview)  # the characters themselves, not a copy
    stored = b"".join(parts)
    assert stored[HEADER_SIZE:] == msgpack.packb(text)  # readers of any version read it as before
    assert Codec().decode(stored) == text


@pytest.mark.parametrize("compression", ["none", "zlib"])
def test_a_large_ascii_string_round_trips_with_and_without_compression(compression: str) -> None:
    codec = Codec(compression=compression, compression_threshold=1024)
    text = csv_text(2 * MB + 7)
    assert codec.decode(codec.encode(text)) == text


def test_the_view_keeps_the_string_alive_and_cannot_change_it() -> None:
    view = ascii_view(csv_text(2 * MB))  # the only reference to the string is the view's
    gc.collect()
    assert bytes(view[:11]) == b"2026-11-22,"  # type: ignore[index]
    with pytest.raises(TypeError):
        view[0] = 0  # type: ignore[index]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("é" + csv_text(2 * MB), id="non-ascii"),
        pytest.param(type("Sub", (str,), {})(csv_text(2 * MB)), id="str-subclass"),
        pytest.param(csv_text(1000), id="short"),
    ],
)
def test_other_strings_are_packed_as_usual_and_round_trip(text: str) -> None:
    assert msgpack_str_parts(text) is None
    codec = Codec()
    assert codec.decode(codec.encode(text)) == str(text)


PUSH = """
import json, sys
from pathlib import Path
from redis_xcom.codec import Codec
from redis_xcom.config import Settings
from redis_xcom.storage.client import build_client
from redis_xcom.storage.store import RedisStore

def rss(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

url, key, size, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
codec, store = Codec(), RedisStore(build_client(Settings(url=url)))
store.put(key, codec.encode_parts("warm"), 60, index=key + ":index")  # imports, connection
value = first + "x" * (size - 1)
Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak from here on is this push's
before = rss("VmRSS")
store.put(key, codec.encode_parts(value), 60, index=key + ":index")
print(json.dumps({"growth": rss("VmHWM") - before}))
"""


@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak RSS from /proc (Linux)")
def test_pushing_a_large_ascii_string_adds_no_copy_of_it_to_the_producer(redis_server: RedisServer) -> None:
    size = 48 * MB

    def growth(first: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", PUSH, redis_server.url, f"t-large-text-{ord(first)}", str(size), first],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return int(json.loads(out.stdout)["growth"]) / size

    # One non-ASCII character makes the codec encode a UTF-8 copy: the measure sees copies.
    assert growth("é") > 0.9
    assert growth("x") < 0.1
