#!/usr/bin/env bash
# The local API survives hostile clients: garbage, an absurd length, a
# truncated frame, an unknown command, a wrong version; root-only commands
# refuse other users (SO_PEERCRED, not anything the client says).
PREFIX=api
. "$(dirname "$0")/common.sh"
start_cluster 2
on 1 python3 - <<'PY'
import socket, struct, time
P = "/run/krg/krgd.sock"
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(P); return s
def frame(b): return struct.pack(">I", len(b)) + b
def pb_str(field, s): b = s.encode(); return bytes([field << 3 | 2, len(b)]) + b
def pb_var(field, v): return bytes([field << 3, v])
# 1. absurd length: closed
s = conn(); s.sendall(struct.pack(">I", 0xFFFFFFF0)); assert s.recv(10) == b"", "absurd length not closed"
# 2. garbage protobuf: -EBADMSG then closed
s = conn(); s.sendall(frame(b"\xff\xff\xff\xff\xff")); r = s.recv(100); assert r and b"malformed" in r, r
# 3. truncated frame then hang up: nothing to answer, must not crash
s = conn(); s.sendall(struct.pack(">I", 100) + b"abc"); s.close()
# 4. unknown command and 5. wrong version, answered on one connection
s = conn()
s.sendall(frame(pb_var(1, 1) + pb_str(2, "no.such.command")))
r = s.recv(200); assert b"unknown command" in r, r
s.sendall(frame(pb_var(1, 99) + pb_str(2, "cluster.status")))
r = s.recv(200); assert b"not supported" in r, r
# 6. a good request still works after all that
s.sendall(frame(pb_var(1, 1) + pb_str(2, "cluster.status")))
r = s.recv(4096); assert len(r) > 10, r
print("api hostile clients: ok")
PY
# krgd still alive and serving
on 1 krgadm cluster status >/dev/null
out=$(on 1 setpriv --reuid=65534 --regid=65534 --clear-groups krgadm cluster poweroff 2>&1) && fail "nobody could power off"
echo "$out" | grep -q "permission denied" || fail "unclear refusal: $out"
on 1 pgrep -x krgd >/dev/null || fail "krgd died"
grep -q "refused cluster.poweroff for uid 65534" "$(log_of 1)" || fail "refusal not logged"
echo PASS
