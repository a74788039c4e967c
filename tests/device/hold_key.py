#!/usr/bin/env python3
"""Hold a device key loaded, for memory scans of ihsmd.

    hold_key.py SOCKET CREDENTIAL NAME SCHEME

Opens a session with CREDENTIAL (the user's), finds the stored key NAME
(KEY_FIND loads it into ihsmd's memory), signs with it (SCHEME: ecdsa,
pkcs1 or ed25519), prints "ready HANDLE" and keeps the session, and so the
key, until told otherwise. Commands on stdin, one per line, each answered
with one line on stdout:

    sign    sign again: "sign IHSM_OK" or "sign <status name>"
    quit    close the connection and exit

Speaks docs/protocol.md directly (one request per frame), so the scan sees
ihsmd exactly as a TLS server's session leaves it.
"""
import hashlib
import socket
import struct
import sys

MAGIC = 0x4D534849
OPEN_SESSION, KEY_FIND, SIGN = 0x02, 0x17, 0x20
ROLE_USER = 1
SCHEMES = {"pkcs1": (1, 3), "ecdsa": (3, 3), "ed25519": (4, 0)}  # scheme, md
STATUS = {0: "IHSM_OK", 4: "IHSM_ERR_NO_SESSION", 7: "IHSM_ERR_PERMISSION",
          10: "IHSM_ERR_BAD_HANDLE", 11: "IHSM_ERR_NOT_FOUND"}


def u32(v):
    return struct.pack("<I", v)


def bts(b):
    return u32(len(b)) + b


class Device:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(20)
        self.s.connect(path)
        self.next_id = 1

    def call(self, cmd, session, payload):
        rid = self.next_id
        self.next_id += 1
        entry = struct.pack("<QHHII", rid, cmd, 0, session, len(payload)) + payload
        self.s.send(struct.pack("<IHHHHI", MAGIC, 1, 1, 1, 0, len(entry)) + entry)
        msg = self.s.recv(256 * 1024)
        magic, _, kind, count, _, body = struct.unpack_from("<IHHHHI", msg)
        if magic != MAGIC or kind != 2 or count != 1 or body != len(msg) - 16:
            raise SystemExit("hold_key: malformed completion")
        cid, ccmd, status, _, plen = struct.unpack_from("<QHHII", msg, 16)
        if cid != rid or ccmd != cmd:
            raise SystemExit("hold_key: completion for another request")
        return status, msg[36:36 + plen]


def credential(path):
    fields = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            fields[k.strip()] = v.strip()
    return fields["partition"].encode(), bytes.fromhex(fields["pin"])


def main():
    if len(sys.argv) != 5 or sys.argv[4] not in SCHEMES:
        print(__doc__, file=sys.stderr)
        return 2
    sock, cred, name, scheme_name = sys.argv[1:]
    part, pin = credential(cred)
    dev = Device(sock)
    st, out = dev.call(OPEN_SESSION, 0, bts(part) + bts(pin) + u32(ROLE_USER))
    if st != 0:
        raise SystemExit("hold_key: OPEN_SESSION: %s" % STATUS.get(st, st))
    (sid,) = struct.unpack_from("<I", out)
    st, out = dev.call(KEY_FIND, sid, bts(name.encode()))
    if st != 0:
        raise SystemExit("hold_key: KEY_FIND %s: %s" % (name, STATUS.get(st, st)))
    (handle,) = struct.unpack_from("<I", out)
    scheme, md = SCHEMES[scheme_name]
    msg = b"a message signed while the key is held"
    tbs = msg if md == 0 else hashlib.sha256(msg).digest()
    salt = 0xFFFFFFFF  # IHSM_PSS_SALT_DIGEST; unused by these schemes

    def sign():
        return dev.call(SIGN, sid, u32(handle) + u32(scheme) + u32(md) + u32(md) + u32(salt)
                        + bts(tbs))[0]

    for _ in range(3):
        st = sign()
        if st != 0:
            raise SystemExit("hold_key: SIGN: %s" % STATUS.get(st, st))
    print("ready %d" % handle, flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "sign":
            st = sign()
            print("sign %s" % STATUS.get(st, st), flush=True)
        elif cmd == "quit":
            break
    dev.s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
