"""Protobuf encoding by hand, for the load-test scripts (no dependency): the wire types
they need, field by field."""
import struct


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def msg(num, payload):
    """A length-delimited field: bytes, a string's UTF-8, or an embedded message."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def string(num, text):
    return msg(num, text.encode())


def uint(num, n):
    return varint(num << 3) + varint(n)


def fixed64(num, n):
    return varint(num << 3 | 1) + struct.pack("<Q", n)


def double(num, x):
    return varint(num << 3 | 1) + struct.pack("<d", x)
