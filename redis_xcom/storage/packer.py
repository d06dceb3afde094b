"""How commands reach the socket: small ones packed by hiredis's C code, large values never copied."""

from __future__ import annotations

import hiredis
from redis.exceptions import DataError

from redis_xcom.storage.redispy_compat import RespSerializer, utf8_encoder

# A byte buffer as the store takes it: len() is its size in bytes.
Buffer = bytes | bytearray | memoryview


class BufferList(tuple[Buffer, ...]):
    """One command argument made of several byte buffers, sent as a single bulk string.

    A large XCom is a 30-byte header plus the payload's own buffers; joining them would copy the
    whole payload once more just to send it. The repr never shows the bytes (payloads stay out of
    logs and error messages).
    """

    __slots__ = ()

    @property
    def nbytes(self) -> int:
        return sum(len(part) for part in self)

    def __repr__(self) -> str:
        return f"<{len(self)} buffers, {self.nbytes} bytes>"


# Arguments that redis-py's Python packer sends without copying them (whatever their size).
_SENT_AS_THEY_ARE = frozenset({BufferList, memoryview, bytearray})


class _CommandPacker(RespSerializer):
    """Packs commands by the size of their arguments.

    Small commands (nearly all) go through hiredis's C packer, about 4 µs faster per command than
    redis-py's Python one. A command with a large argument goes through redis-py's Python packer,
    which sends the argument as it is where hiredis would copy it; BufferList arguments are written
    part by part.
    """

    def pack(self, *args: object) -> list[bytes | memoryview]:
        first = args[0]
        if isinstance(first, str):  # "CONFIG GET"-style names are split, as redis-py does
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        cutoff = self.buffer_cutoff
        for arg in args:
            kind = type(arg)
            if kind in _SENT_AS_THEY_ARE or (kind is bytes and len(arg) > cutoff):  # type: ignore[arg-type]
                return self._pack_large(args)
        try:
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]
        except TypeError as exc:  # what redis-py raises for an argument it cannot send
            raise DataError(str(exc)) from exc

    def _pack_large(self, args: tuple[object, ...]) -> list[bytes | memoryview]:
        if BufferList not in map(type, args):
            # redis-py 5 and 6.0 refuse a bytearray; a view of it is sent as it is by every version.
            return super().pack(*(memoryview(a) if type(a) is bytearray else a for a in args))
        output: list[bytes | memoryview] = []
        pieces: list[Buffer] = [b"*%d\r\n" % len(args)]
        for arg in args:
            if type(arg) is not BufferList:
                encoded = self.encode(arg)
                pieces += (b"$%d\r\n" % len(encoded), encoded, b"\r\n")
                continue
            pieces.append(b"$%d\r\n" % arg.nbytes)
            for part in arg:
                if len(part) <= self.buffer_cutoff:
                    pieces.append(part)
                    continue
                output.append(b"".join(pieces))  # large parts go to the socket as they are
                output.append(part if isinstance(part, bytes | memoryview) else memoryview(part))
                pieces = []
            pieces.append(b"\r\n")
        output.append(b"".join(pieces))
        return output


# Commands are packed by size (replies are parsed by hiredis, which redis-py picks up by itself).
COMMAND_PACKER = _CommandPacker(6000, utf8_encoder())


def sends_buffer_lists(client: object) -> bool:
    """Whether client packs BufferList arguments: those from build_client do (a RedisCluster's
    through its nodes manager, which builds every node's connections), any other joins them."""
    owner = getattr(client, "connection_pool", None) or getattr(client, "nodes_manager", None)
    kwargs = getattr(owner, "connection_kwargs", {})
    return kwargs.get("command_packer") is COMMAND_PACKER
