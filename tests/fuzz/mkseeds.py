#!/usr/bin/env python3
"""Write the seeds of the api and peer fuzz targets (tests/fuzz/corpus/api,
tests/fuzz/corpus/peer): one small valid input per command / message type,
protobuf encoded by hand (field numbers from src/proto/*.proto).
usage: tests/fuzz/mkseeds.py  (from anywhere; rewrites those two dirs' seeds)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def f_int(n, v):  # varint field (uint, bool, enum; negative int32 as 10 bytes)
    if v < 0:
        v += 1 << 64
    return varint(n << 3) + varint(v)


def f_sint(n, v):  # sint32 (zigzag)
    return f_int(n, (v << 1) ^ (v >> 31))


def f_bytes(n, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(n << 3 | 2) + varint(len(b)) + b


def f_double(n, v):
    return varint(n << 3 | 1) + struct.pack("<d", v)


def frame(b):
    return struct.pack(">I", len(b)) + b


def request(cmd, body=None):
    b = f_int(1, 1) + f_bytes(2, cmd)
    if body is not None:
        b += f_bytes(3, body)
    return frame(b)


RUN = (f_bytes(1, "/bin/echo") + f_bytes(1, "hi") + f_bytes(2, "PATH=/bin") + f_bytes(3, "/tmp") + f_int(4, 0o22)
       + f_bytes(5, f_int(1, 7) + f_int(2, 1024) + f_int(3, 4096)) + f_int(6, 2) + f_int(8, 1) + f_int(9, 24)
       + f_int(10, 80) + f_bytes(11, "xterm"))
IO = [f_int(1, 0) + f_bytes(2, "input\n"), f_int(4, 15), f_int(5, 50) + f_int(6, 132), f_int(3, 1)]
NODES_CHANGE = f_int(1, 2) + f_int(1, 3) + f_int(2, 1)

API = {
    "cluster-status": request("cluster.status"),
    "node-stats": request("node.stats"),
    "sched-status": request("sched.status"),
    "poweroff": request("cluster.poweroff"),
    "unknown": request("no.such"),
    "version": frame(f_int(1, 9) + f_bytes(2, "cluster.status")),
    "run-stream": request("proc.run", RUN) + b"".join(frame(x) for x in IO),
    "proc-list": request("proc.list", f_int(1, 1000) + f_int(2, 1)),
    "proc-kill": request("proc.kill", f_int(1, 4194305) + f_int(2, 15) + f_int(3, 0)),
    "ckpt-dump": request("ckpt.dump", f_int(1, 4194305) + f_int(2, 1) + f_bytes(4, "x") + f_int(6, 9)),
    "ckpt-restart": request("ckpt.restart", f_int(1, 4194305) + f_int(2, 1) + f_int(3, 2) + f_int(6, 1)),
    "mig-move": request("mig.move", f_int(1, 4194305) + f_int(2, 2) + f_int(5, 3 | 4 << 16)),
    "sched-ctl": request("sched.ctl", "set mosix.threshold 1.5") + request("sched.ctl", "enable round_robin"),
    "sched-capset": request("sched.capset", "4194305 e CAN_MIGRATE") + request("sched.capset", "self show"),
    "nodes": request("nodes.add", NODES_CHANGE) + request("nodes.del", f_int(4, 1)),
    "many": b"".join(request(c) for c in ["cluster.status", "node.stats", "sched.status"]),
}


def env(typ, body, req_id=0):
    b = f_int(1, 1) + f_bytes(2, typ)
    if req_id:
        b += f_int(3, req_id)
    return b + f_bytes(6, body)


SPAWN = f_int(1, 7) + f_bytes(2, RUN) + f_int(3, 1000) + f_int(4, 1000) + f_int(5, 1000) + f_int(5, 27) + f_int(6, 1 << 20)
COMMAND = f_int(1, 1) + f_bytes(3, f_bytes(1, "sched") + f_bytes(2, "policy.mosix.enabled") + f_bytes(3, "1"))
PEER = {
    "proc-spawn": env("proc.spawn", SPAWN, 5),
    "proc-data": env("proc.data", f_int(1, 7) + f_int(2, 1) + f_bytes(3, "out") + f_int(4, 1)),
    "proc-exit": env("proc.exit", f_int(1, 7) + f_int(2, 0) + f_int(4, 100) + f_int(7, 5)),
    "proc-ctl": env("proc.ctl", f_int(1, 7) + f_int(2, 2) + f_int(4, 24) + f_int(5, 80) + f_int(6, 4096)),
    "proc-list": env("proc.list", f_int(1, 0) + f_int(2, 1), 6),
    "proc-kill": env("proc.kill", f_int(1, 4194305) + f_int(2, 9) + f_int(3, 1000), 6),
    "node-load": env("node.load", f_int(1, 2) + f_double(2, 0.5) + f_double(3, 0.1) + f_double(4, 0.2)
                     + f_double(5, 0.3) + f_int(6, 1 << 20) + f_int(7, 1 << 19) + f_int(8, 1 << 19) + f_int(9, 40)
                     + f_int(10, 3) + f_int(11, 1700000000000)),
    "sched-capset": env("sched.capset", "1000 4194305 d CAN_MIGRATE", 8),
    "ckpt-dump": env("ckpt.dump", f_int(1, 4194305) + f_int(5, 1000) + f_int(10, 1), 9),
    "ckpt-restart": env("ckpt.restart", f_int(1, 4194305) + f_int(4, 1000) + f_int(5, 1), 9),
    "ckpt-recv": env("ckpt.recv", f_int(1, 2 << 32 | 1) + f_int(2, 4194305) + f_int(3, 1) + f_int(4, 1000)
                     + f_int(5, 1000) + f_int(6, 1000), 9),
    "ckpt-file": env("ckpt.file", f_int(1, 2 << 32 | 1) + f_int(2, 4194305) + f_int(3, 1) + f_int(4, 1000)
                     + f_int(5, 1000) + f_bytes(6, "core-5.img") + f_int(7, 0) + f_bytes(8, "KRGCKPT\n") + f_int(9, 1)),
    "mig-io": env("mig.io", f_int(1, 4194305) + f_int(2, 1) + f_bytes(3, "x") + f_int(5, 1) + f_int(9, 1)
                  + f_int(10, 24 << 16 | 80)),
    "mig-sig": env("mig.sig", f_int(1, 4194305) + f_int(6, 10) + f_sint(14, -1) + f_int(15, 42) + f_int(16, 7)),
    "mig-exit": env("mig.exit", f_int(1, 4194305) + f_int(7, 256)),
    "mig-where": env("mig.where", f_int(1, 4194305) + f_int(8, 3) + f_int(13, 1 << 9)),
    "mig-go": env("mig.go", f_int(1, 4194305)),
    "mig-move": env("mig.move", f_int(1, 4194305) + f_int(2, 3) + f_int(3, 1000), 10),
    "mig-recv": env("mig.recv", f_int(1, 1 << 32 | 2) + f_int(2, 4194305) + f_int(3, 1000) + f_int(4, 1000), 10),
    "mig-file": env("mig.file", f_int(1, 5) + f_bytes(2, "pages-1.img") + f_int(3, 64) + f_bytes(4, "abc")
                    + f_int(5, 1)),
    "mig-got": env("mig.got", f_int(1, 5) + f_int(2, 1 << 20)),
    "cluster-nodes": env("cluster.nodes", f_int(1, 1) + f_bytes(2, NODES_CHANGE) + f_int(3, 1), 11),
    "cluster-propose": env("cluster.propose", f_bytes(1, COMMAND), 12),
    "cluster-poweroff": env("cluster.poweroff", b"", 13),
    "raft-tunnel": env("raft.tunnel", f_int(1, 3) + f_int(2, 0) + f_bytes(4, "2") + f_int(5, 2))
                   + b"",
    "raft-data": env("raft.tunnel", f_int(1, 3) + f_int(2, 1) + f_bytes(3, b"\x00" * 16)),
}

for name, seeds in (("api", API), ("peer", PEER)):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)
