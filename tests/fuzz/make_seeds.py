#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: valid inputs of several
shapes plus near misses. Run once; the corpora are committed.

    make_seeds.py [TARGET ...]     targets: frame keyfile import (default: all)

The frame seeds need nothing; the keyfile and import seeds take real public
and private keys from the `openssl` command (so they differ run to run).
Input layouts: the comment at the top of each fuzz_<target>.c."""
import base64, os, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

def u32(v): return struct.pack("<I", v)
def bts(b): return u32(len(b)) + b

def write(target, seeds):
    out = os.path.join(HERE, "corpus", target)
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out}")

# ---------------------------------------------------------------- frame

def frame(kind, entries, version=1):
    body = b"".join(struct.pack("<QHHII", i, cmd, st, sess, len(p)) + p
                    for (i, cmd, st, sess, p) in entries)
    return struct.pack("<IHHHHI", 0x4D534849, version, kind, len(entries), 0, len(body)) + body

def frame_seeds():
    return {
        "info": frame(1, [(1, 0x01, 0, 0, b"")]),
        "random64": frame(1, [(i, 0x30, 0, 3, u32(32)) for i in range(64)]),
        "open_session": frame(1, [(9, 0x02, 0, 0, bts(b"test") + bts(bytes(32)) + u32(1))]),
        "sign": frame(1, [(5, 0x20, 0, 3, u32(0x10001) + u32(3) + u32(3) + u32(0) + u32(0) + bts(bytes(32)))]),
        "completion": frame(2, [(5, 0x20, 0, 0, bts(b"\x30\x06\x02\x01\x01\x02\x01\x01")), (6, 0x30, 15, 0, b"")]),
        "bad_version": frame(1, [(1, 0x01, 0, 0, b"")], version=2),
        "truncated": frame(1, [(1, 0x30, 0, 3, u32(32))])[:-2],
    }

# ---------------------------------------------------------------- keys

def openssl(*args):
    return subprocess.run(("openssl",) + args, check=True, capture_output=True).stdout

def genkey(*opts):
    """(PKCS#8 DER, SubjectPublicKeyInfo DER) of a fresh key."""
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "k.der")
        openssl("genpkey", *opts, "-outform", "DER", "-out", key)
        pub = openssl("pkey", "-inform", "DER", "-in", key, "-pubout", "-outform", "DER")
        with open(key, "rb") as f:
            return f.read(), pub

KEYS = {}

def key(name):
    if name not in KEYS:
        opts = {
            "ec256": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
            "ec384": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"),
            "ec256_explicit": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-pkeyopt", "ec_param_enc:explicit"),
            "ec_k256": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"),
            "ed25519": ("-algorithm", "ED25519"),
            "x25519": ("-algorithm", "X25519"),
            "rsa2048": ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
            "rsapss2048": ("-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"),
        }[name]
        KEYS[name] = genkey(*opts)
    return KEYS[name]

# ---------------------------------------------------------------- keyfile

def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b

def tlv(tag, content): return bytes([tag]) + der_len(len(content)) + content
def der_int(v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)
    return tlv(0x02, b)

def masked_key(ktype, spki, blob, version=1):
    return tlv(0x30, der_int(version) + der_int(ktype) + tlv(0x04, spki) + tlv(0x04, blob))

def fake_blob(ktype, bits, label=b"web", n=121):
    hdr = b"IHMK" + struct.pack("<HHIIH", 1, ktype, bits, 1, len(label)) + label + bytes(range(16))
    return hdr + bytes(12) + bytes((i * 7) & 0xFF for i in range(n)) + bytes(16)

def pem(label, der):
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()

def keyfile_seeds():
    ec = masked_key(2, key("ec256")[1], fake_blob(2, 256))
    rsa = masked_key(1, key("rsa2048")[1], fake_blob(1, 2048, n=1230))
    seeds = {
        "der_ec": b"\x00" + ec,
        "der_ec384": b"\x00" + masked_key(3, key("ec384")[1], fake_blob(3, 384)),
        "der_rsa": b"\x00" + rsa,
        "der_rsapss": b"\x00" + masked_key(1, key("rsapss2048")[1], fake_blob(1, 2048, n=1230)),
        "der_ed25519": b"\x00" + masked_key(4, key("ed25519")[1], fake_blob(4, 256, n=48)),
        "der_x25519": b"\x00" + masked_key(5, key("x25519")[1], fake_blob(5, 256, n=48)),
        "der_aes": b"\x00" + masked_key(6, b"", fake_blob(6, 256, n=32)),
        "der_version2": b"\x00" + masked_key(2, key("ec256")[1], fake_blob(2, 256), version=2),
        "der_type7": b"\x00" + masked_key(7, key("ec256")[1], fake_blob(2, 256)),
        "der_trailing": b"\x00" + ec + b"\x00",
        "der_empty_blob": b"\x00" + masked_key(2, key("ec256")[1], b""),
        "der_type_mismatch": b"\x00" + masked_key(4, key("ec256")[1], fake_blob(2, 256)),
        "pem_ec": b"\x01" + pem("IHSM MASKED KEY", ec),
        "pem_rsa_after_cert": b"\x01" + pem("CERTIFICATE", bytes(range(200)))
                              + pem("IHSM MASKED KEY", rsa),
        "pem_other_label": b"\x01" + pem("PRIVATE KEY", key("ec256")[0]),
        "pem_damaged": b"\x01" + pem("IHSM MASKED KEY", ec).replace(b"\n-----END", b"!!\n-----END"),
        "pem_headers": b"\x01" + pem("IHSM MASKED KEY", ec).replace(
            b"KEY-----\n", b"KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n", 1),
    }
    return seeds

# ---------------------------------------------------------------- import

BITS = {0: 0, 128: 1, 256: 2, 384: 3, 2048: 4, 3072: 5, 4096: 6}

def imp(mode, ktype, bits, usage, keybytes, label=b"imp", kek=None):
    s = bytes([mode, ktype, BITS[bits], usage, len(label)]) + label
    if mode == 2:
        s += bytes([len(kek)]) + kek
    return s + keybytes

def unmask(ktype, bits, usage, pt, label=b"web", flags=0):
    return bytes([4, ktype, BITS[bits], usage, flags, len(label)]) + label + pt

def import_seeds():
    aes = bytes(range(32))
    seeds = {
        "imp_ec256": imp(1, 2, 0, 0, key("ec256")[0]),
        "imp_ec256_sign_derive": imp(1, 2, 256, 3, key("ec256")[0]),
        "imp_ec384": imp(1, 3, 384, 0, key("ec384")[0]),
        "imp_ed25519": imp(1, 4, 0, 0, key("ed25519")[0]),
        "imp_x25519": imp(1, 5, 256, 2, key("x25519")[0]),
        "imp_rsa2048": imp(1, 1, 2048, 1, key("rsa2048")[0]),
        "imp_aes256": imp(1, 6, 256, 0, aes),
        "imp_aes128": imp(1, 6, 0, 12, aes[:16]),
        "imp_ec_explicit": imp(1, 2, 0, 0, key("ec256_explicit")[0]),
        "imp_secp256k1": imp(1, 2, 0, 0, key("ec_k256")[0]),
        "imp_ec_as_rsa": imp(1, 1, 0, 0, key("ec256")[0]),
        "imp_kek16": imp(2, 6, 256, 0, aes, kek=bytes(16)),
        "imp_kek32": imp(2, 2, 0, 0, key("ec256")[0], kek=bytes(range(32))),
        "imp_raw": bytes([0, 2, 0, 0, 0]) + bytes(384 + 40),
        "unm_ec256": unmask(2, 256, 1, key("ec256")[0]),
        "unm_ec384": unmask(3, 384, 3, key("ec384")[0]),
        "unm_ed25519": unmask(4, 256, 1, key("ed25519")[0]),
        "unm_x25519": unmask(5, 256, 2, key("x25519")[0]),
        "unm_rsa2048": unmask(1, 2048, 1, key("rsa2048")[0]),
        "unm_aes256": unmask(6, 256, 12, aes),
        "unm_other_partition": unmask(2, 256, 1, key("ec256")[0], flags=1),
        "unm_header_lies": unmask(1, 2048, 1, key("ec256")[0]),
        "unm_raw_header": bytes([3]) + fake_blob(2, 256),
    }
    return seeds

TARGETS = {"frame": frame_seeds, "keyfile": keyfile_seeds, "import": import_seeds}

if __name__ == "__main__":
    for t in sys.argv[1:] or list(TARGETS):
        if t not in TARGETS:
            sys.exit(f"unknown target {t}: one of {' '.join(TARGETS)}")
        write(t, TARGETS[t]())
