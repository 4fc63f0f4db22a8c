#!/usr/bin/env python3
"""Eviction with System V state (tests/cluster/evict.sh): a message
queue made and filled before its node leaves must still be there, with
its message, once the process is checkpointed and restarted elsewhere.
Writes DIR/qid once the message is sent, waits for DIR/go, then writes
what it receives to DIR/result (or exits non-zero, naming the call)."""
import ctypes
import os
import sys
import time

IPC_PRIVATE, IPC_RMID, IPC_NOWAIT = 0, 0, 0o4000


class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 64)]


libc = ctypes.CDLL(None, use_errno=True)
libc.msgrcv.restype = ctypes.c_ssize_t
d = sys.argv[1]


def check(rc, what):
    if rc < 0:
        sys.exit(f"{what}: {os.strerror(ctypes.get_errno())}")
    return rc


q = check(libc.msgget(IPC_PRIVATE, 0o600), "msgget")
check(libc.msgsnd(q, ctypes.byref(Msg(1, b"sent before the eviction")), ctypes.c_size_t(64), 0), "msgsnd")
with open(d + "/qid.tmp", "w") as f:
    f.write(str(q))
os.rename(d + "/qid.tmp", d + "/qid")
while not os.path.exists(d + "/go"):
    time.sleep(0.1)
r = Msg()
check(libc.msgrcv(q, ctypes.byref(r), ctypes.c_size_t(64), ctypes.c_long(0), IPC_NOWAIT), "msgrcv")
check(libc.msgctl(q, IPC_RMID, None), "msgctl")
with open(d + "/result.tmp", "w") as f:
    f.write(r.mtext.decode())
os.rename(d + "/result.tmp", d + "/result")
