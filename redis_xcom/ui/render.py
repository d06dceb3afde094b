"""What a UI sandbox worker does with one stored value: decode it, then render a preview or its JSON.

Runs inside the worker (redis_xcom/ui/sandbox_worker.py), under its memory and CPU limits: the
value's bytes come in, and only the rendered bytes or the reason why not go out (protocol.py).
Objects Airflow's serde wrote stay their serialized form here too: no user class is imported.
"""

from __future__ import annotations

import json

from redis_xcom.codec import Codec
from redis_xcom.errors import DecodeLimitError, RedisXComError
from redis_xcom.ui import protocol
from redis_xcom.ui.export import NotRepresentable, OutputTooLarge, to_json
from redis_xcom.ui.preview import preview


def render(
    op: str,
    data: bytes,
    max_decoded_bytes: int,
    preview_bytes: int,
    max_output_bytes: int,
    memory_mb: int,
) -> tuple[int, bytes]:
    """(status, body) for one value: OK with the rendered bytes, FAILED or TOO_COSTLY with why
    (memory_mb: the worker's cap, named when it is breached)."""
    memory = f"rendering it needs more memory than [redis_xcom] ui_sandbox_memory_mb = {memory_mb} allows"
    codec = Codec(max_decoded_bytes=max_decoded_bytes, rebuild_classes=False)
    try:
        value = codec.decode(data)
    except DecodeLimitError as exc:
        # The codec's own bound: what the value would materialize is far beyond its stored size.
        return protocol.TOO_COSTLY, protocol.reason(f"the codec refused to decode it: {exc}")
    except MemoryError:
        return protocol.TOO_COSTLY, protocol.reason(memory)
    except RedisXComError as exc:
        if isinstance(exc.__cause__, MemoryError):  # the codec wraps what its decoders raise
            return protocol.TOO_COSTLY, protocol.reason(memory)
        return protocol.FAILED, protocol.why(protocol.DECODE, type(exc).__name__, str(exc))
    except Exception as exc:  # the codec turns everything into its errors; anything else is a bug
        return protocol.FAILED, protocol.why(protocol.DECODE, type(exc).__name__, str(exc))
    except BaseException as exc:
        # ormsgpack's Rust panics surface as PanicException, a BaseException.
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return protocol.FAILED, protocol.why(protocol.DECODE, type(exc).__name__, str(exc))
    del data
    try:
        if op == protocol.PREVIEW:
            shown = preview(value, preview_bytes).as_json()
            body = json.dumps(shown, ensure_ascii=False).encode("utf-8", errors="replace")
        else:
            body = to_json(value, max_output_bytes)
    except MemoryError:  # pyarrow's ArrowMemoryError too
        return protocol.TOO_COSTLY, protocol.reason(memory)
    except OutputTooLarge as exc:
        return protocol.TOO_COSTLY, protocol.reason(f"{exc} ([redis_xcom] ui_sandbox_max_output_bytes)")
    except NotRepresentable as exc:
        return protocol.FAILED, protocol.why(protocol.RENDER, "NotRepresentable", str(exc))
    except Exception as exc:
        # One value that cannot be shown (an int of 5000 digits, deep nesting) fails alone.
        return protocol.FAILED, protocol.why(protocol.RENDER, type(exc).__name__, str(exc))
    if len(body) > max_output_bytes:
        too_long = (
            f"its rendering is {len(body)} bytes, above the {max_output_bytes} allowed ({protocol.BOUNDS})"
        )
        return protocol.TOO_COSTLY, protocol.reason(too_long)
    return protocol.OK, body
