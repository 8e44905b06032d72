#!/usr/bin/env python3
"""decode-rpcs.py TRACE... — turns `strace -f -xx -ttt` traces of shim daemons (made by
lib.sh's E2E_TRACE_RPCS wrapper) into the ttrpc traffic they carry, in time order:
  → Method {request fields}          a containerd.task.v2.Task request the shim read
  ← Method: error CODE "message"     the shim's reply to it, when it is an error
  ⇒ /tasks/topic                     an Events/Forward the shim sent to containerd
Heuristic by design (it looks for the service names in the bytes read and written), and
good enough to compare what containerd asks of two shims."""

import re
import sys

TASK = b"\x0a\x17containerd.task.v2.Task"
EVENTS = b"\x0a\x2acontainerd.services.events.ttrpc.v1.Events"
CODES = {0: "OK", 1: "Canceled", 2: "Unknown", 3: "InvalidArgument", 4: "DeadlineExceeded",
         5: "NotFound", 6: "AlreadyExists", 7: "PermissionDenied", 8: "ResourceExhausted",
         9: "FailedPrecondition", 10: "Aborted", 11: "OutOfRange", 12: "Unimplemented",
         13: "Internal", 14: "Unavailable", 15: "DataLoss", 16: "Unauthenticated"}

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
SYSCALL = re.compile(r"^(?:<\.\.\. )?(read|write|readv|writev|recvmsg|sendmsg)\b")
QUOTED = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')


def varint(b, i):
    v = s = 0
    while i < len(b):
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if not c & 0x80:
            return v, i
    raise ValueError("truncated varint")


def fields(b):
    """protobuf fields as (number, wire type, value) until the bytes run out"""
    out, i = [], 0
    try:
        while i < len(b):
            key, i = varint(b, i)
            num, wt = key >> 3, key & 7
            if wt == 0:
                v, i = varint(b, i)
            elif wt == 2:
                n, i = varint(b, i)
                v = b[i:i + n]
                i += n
            elif wt == 1:
                v, i = b[i:i + 8], i + 8
            elif wt == 5:
                v, i = b[i:i + 4], i + 4
            else:
                break
            out.append((num, wt, v))
    except ValueError:
        pass
    return out


def text(v):
    try:
        s = v.decode()
        return s if s.isprintable() else None
    except UnicodeDecodeError:
        return None


# request fields worth showing, by method: field number → name
SHOW = {
    "Create": {1: "id", 4: "terminal", 5: "stdin", 6: "stdout", 7: "stderr"},
    "Kill": {1: "id", 2: "exec_id", 3: "signal", 4: "all"},
    "Exec": {1: "id", 2: "exec_id", 3: "terminal"},
    "ResizePty": {1: "id", 2: "exec_id", 3: "width", 4: "height"},
    "CloseIO": {1: "id", 2: "exec_id", 3: "stdin"},
    "Shutdown": {1: "id", 2: "now"},
}


def describe(method, payload):
    show = SHOW.get(method, {1: "id", 2: "exec_id"})
    parts = []
    for num, wt, v in fields(payload):
        if num not in show:
            continue
        if wt == 2:
            t = text(v)
            if t:
                parts.append(f"{show[num]}={t}")
        elif wt == 0:
            parts.append(f"{show[num]}={v}")
    if method == "Create":
        mounts = [m for n, wt, m in fields(payload) if n == 3 and wt == 2]
        for m in mounts:
            mt = [text(v) for n, wt, v in fields(m) if n == 1 and wt == 2]
            parts.append(f"rootfs={mt[0] if mt else '?'}")
        opts = [v for n, wt, v in fields(payload) if n == 10 and wt == 2]
        for o in opts:
            url = [text(v) for n, wt, v in fields(o) if n == 1 and wt == 2]
            parts.append(f"options={url[0] if url else '?'}")
    return " ".join(parts)


def events(path):
    pending = {}  # pid → text of an unfinished syscall line
    for raw in open(path, errors="replace"):
        m = LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        pid, ts, rest = m.groups()
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest
            continue
        if rest.startswith("<..."):
            rest = pending.pop(pid, "") + " " + rest
        sm = SYSCALL.match(rest)
        if not sm:
            continue
        name = sm.group(1)
        data = b"".join(bytes.fromhex(q.replace("\\x", "")) for q in QUOTED.findall(rest))
        if not data:
            continue
        yield float(ts), name, data


def decode(paths):
    out = []
    for path in paths:
        method_of = {}  # stream id → method (per trace: one shim, one containerd connection)
        for ts, name, data in events(path):
            incoming = name in ("read", "readv", "recvmsg")
            if incoming:
                i = data.find(TASK)
                while i >= 0:
                    req = dict((n, v) for n, wt, v in fields(data[i:]) if wt == 2 and n in (2, 3))
                    method = text(req.get(2, b"")) or "?"
                    sid = int.from_bytes(data[i - 6:i - 2], "big") if i >= 10 else None
                    if sid is not None:
                        method_of[sid] = method
                    out.append((ts, f"→ {method} {describe(method, req.get(3, b''))}".rstrip()))
                    i = data.find(TASK, i + 1)
                continue
            i = 0
            while i + 10 <= len(data):  # the shim writes whole frames
                n = int.from_bytes(data[i:i + 4], "big")
                sid = int.from_bytes(data[i + 4:i + 8], "big")
                typ = data[i + 8]
                body = data[i + 10:i + 10 + n]
                if typ == 1 and body.startswith(EVENTS):
                    topic = re.search(rb"/tasks/[a-z-]+|/[a-z]+/[a-z-]+", body)
                    out.append((ts, f"⇒ {topic.group(0).decode() if topic else '?'}"))
                elif typ == 2 and sid in method_of:
                    st = [v for f, wt, v in fields(body) if f == 1 and wt == 2]
                    code = msg = None
                    for f, wt, v in fields(st[0]) if st else []:
                        if f == 1 and wt == 0:
                            code = v
                        elif f == 2 and wt == 2:
                            msg = text(v)
                    if code:
                        out.append((ts, f"← {method_of[sid]}: error {CODES.get(code, code)} \"{msg}\""))
                elif typ not in (1, 2, 3):
                    break
                i += 10 + n
    out.sort()
    if not out:
        return
    t0 = out[0][0]
    for ts, what in out:
        print(f"  {ts - t0:8.3f}s  {what}")


if __name__ == "__main__":
    decode(sys.argv[1:])
