#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_frame: valid frames of several shapes
plus near misses. Run once; the corpus is committed."""
import os, struct, sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "frame")
os.makedirs(out, exist_ok=True)

def frame(kind, entries, version=1):
    body = b"".join(struct.pack("<QHHII", i, cmd, st, sess, len(p)) + p
                    for (i, cmd, st, sess, p) in entries)
    return struct.pack("<IHHHHI", 0x4D534849, version, kind, len(entries), 0, len(body)) + body

def u32(v): return struct.pack("<I", v)
def bts(b): return u32(len(b)) + b

seeds = {
    "info": frame(1, [(1, 0x01, 0, 0, b"")]),
    "random64": frame(1, [(i, 0x30, 0, 3, u32(32)) for i in range(64)]),
    "open_session": frame(1, [(9, 0x02, 0, 0, bts(b"test") + bts(bytes(32)) + u32(1))]),
    "sign": frame(1, [(5, 0x20, 0, 3, u32(0x10001) + u32(3) + u32(3) + u32(0) + u32(0) + bts(bytes(32)))]),
    "completion": frame(2, [(5, 0x20, 0, 0, bts(b"\x30\x06\x02\x01\x01\x02\x01\x01")), (6, 0x30, 15, 0, b"")]),
    "bad_version": frame(1, [(1, 0x01, 0, 0, b"")], version=2),
    "truncated": frame(1, [(1, 0x30, 0, 3, u32(32))])[:-2],
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
