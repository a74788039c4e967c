#!/usr/bin/env python3
"""A SOCK_SEQPACKET relay that records every message a client sends to ihsmd.

    seqpacket_tap.py LISTEN_PATH DEVICE_PATH CAPTURE_FILE

Listens on LISTEN_PATH; each client connection is relayed, message by
message, to DEVICE_PATH. Client-to-device messages are appended to
CAPTURE_FILE (4-byte little-endian length, then the message). Runs until
killed. Used to prove what does and does not cross the socket.
"""
import os
import selectors
import socket
import struct
import sys

listen_path, device_path, capture_path = sys.argv[1:4]
MAX = 256 * 1024

srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
if os.path.exists(listen_path):
    os.unlink(listen_path)
srv.bind(listen_path)
srv.listen(8)
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ, None)
peer = {}
cap = open(capture_path, "ab", buffering=0)

while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is srv:
            c, _ = srv.accept()
            d = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            d.connect(device_path)
            peer[c], peer[d] = d, c
            sel.register(c, selectors.EVENT_READ, "client")
            sel.register(d, selectors.EVENT_READ, "device")
            continue
        try:
            msg = s.recv(MAX)
        except OSError:
            msg = b""
        other = peer.get(s)
        if not msg or other is None:
            for x in (s, other):
                if x is not None and x in peer:
                    sel.unregister(x)
                    peer.pop(x, None)
                    x.close()
            continue
        if key.data == "client":
            cap.write(struct.pack("<I", len(msg)) + msg)
        other.send(msg)
