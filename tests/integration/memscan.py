#!/usr/bin/env python3
"""Search the memory of running processes for a private key's secret bytes.

    memscan.py [--secrets NAME,...] [--outside-size BYTES] KEY.pem PID...

KEY.pem is a clear private key (EC or RSA, PEM). Its secrets are the EC
private scalar, or the RSA private exponent and primes. Each is searched in
every writable or anonymous mapping of every PID (/proc/PID/maps + /proc/PID/mem) both
big-endian (DER, PEM buffers) and byte-reversed (OpenSSL BIGNUMs keep their
words little-endian), whole and as 16-byte pieces, so a partial copy is
found too. Prints one line per hit and the total; exit 0 if nothing was
found, 1 if something was, 2 on usage or read errors.

--secrets limits the search to some of the secrets (priv, privateExponent,
prime1, prime2). --outside-size counts only hits outside every mapping of
exactly BYTES bytes: with ihsmd's secure heap size it asks "is the key
anywhere but in the secure heap?" (hits inside are listed, not counted).
"""
import re
import subprocess
import sys

PIECE = 16


def secrets_of(pem_path):
    """The secret integers of a clear key as big-endian byte strings."""
    text = subprocess.run(["openssl", "pkey", "-in", pem_path, "-text", "-noout"],
                          check=True, capture_output=True, text=True).stdout
    wanted = ("priv", "privateExponent", "prime1", "prime2")
    out = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9]+):\s*$", line)
        if m:
            name = m.group(1) if m.group(1) in wanted else None
            if name:
                out[name] = ""
            continue
        if name and re.match(r"^\s+[0-9a-f:]+$", line):
            out[name] += line.strip()
        else:
            name = None
    result = {}
    for k, v in out.items():
        b = bytes.fromhex(v.replace(":", ""))
        b = b.lstrip(b"\x00")
        if len(b) >= PIECE:
            result[k] = b
    if not result:
        raise SystemExit("memscan: found no secret in %s" % pem_path)
    return result


def needles(secrets):
    """(label, bytes) pairs: whole secrets and 16-byte pieces, both orders."""
    seen = set()
    for name, b in secrets.items():
        for order, s in (("be", b), ("le", b[::-1])):
            cands = [(f"{name}/{order}", s)]
            for off in range(0, len(s) - PIECE + 1, 8):
                cands.append((f"{name}/{order}[{off}:{off + PIECE}]", s[off:off + PIECE]))
            for label, n in cands:
                if n not in seen:
                    seen.add(n)
                    yield label, n


def regions(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            path = parts[5] if len(parts) > 5 else ""
            if perms[0] != "r" or path in ("[vvar]", "[vsyscall]", "[vdso]"):
                continue
            # read-only file mappings are program text and data from disk
            # (libraries, locale): no key is ever written there
            if perms[1] != "w" and path.startswith("/"):
                continue
            yield lo, hi, path


def scan(pid, pieces):
    hits = []
    scanned = 0
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for lo, hi, path in regions(pid):
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue  # e.g. guard pages, device mappings
            scanned += len(data)
            for label, n in pieces:
                i = data.find(n)
                while i >= 0:
                    hits.append((pid, lo + i, path, label))
                    i = data.find(n, i + 1)
    return hits, scanned


def main():
    args = sys.argv[1:]
    only, outside = None, None
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--secrets" and args:
            only = set(args.pop(0).split(","))
        elif opt == "--outside-size" and args:
            outside = int(args.pop(0))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    secrets = secrets_of(args[0])
    if only is not None:
        secrets = {k: v for k, v in secrets.items() if k in only}
        if not secrets:
            raise SystemExit("memscan: %s has none of the secrets %s" % (args[0], ",".join(only)))
    pieces = list(needles(secrets))
    total = 0
    for pid in args[1:]:
        try:
            hits, scanned = scan(int(pid), pieces)
        except OSError as e:
            print(f"memscan: cannot read process {pid}: {e}", file=sys.stderr)
            return 2
        inside = []
        if outside is not None:
            spans = [(lo, hi) for lo, hi, _ in regions(int(pid)) if hi - lo == outside]
            inside = [h for h in hits if any(lo <= h[1] < hi for lo, hi in spans)]
            hits = [h for h in hits if h not in inside]
            print(f"pid {pid}: {len(inside)} hits inside the {len(spans)} mapping(s) of "
                  f"{outside} bytes (not counted)")
        print(f"pid {pid}: scanned {scanned} bytes, {len(hits)} hits")
        for h in hits[:20]:
            print("  hit: pid %d at 0x%x (%s): %s" % (h[0], h[1], h[2] or "anon", h[3]))
        total += len(hits)
    print(f"total hits: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
