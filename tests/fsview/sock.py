#!/usr/bin/env python3
"""sock.py MODE DIR — unix sockets bound in a forwarded directory
(tests/fsview/fsview.sh, docs/fsview.md "Unix sockets").
  serve DIR   binds DIR/s.sock (stream: answers each line upper-cased,
              many clients), DIR/q.sock (seqpacket: each message
              reversed) and DIR/d.sock (datagrams: appended, one a line,
              to DIR/dgram.log); writes DIR/ready
  client DIR  connects to each by path and prints what came back, sends
              3 datagrams "dgram N HOST"
  keep DIR    connects to DIR/s.sock once; each time DIR/goN appears it
              says "N HOST" on that connection and on a new one made by
              path, and writes both answers to DIR/resultN"""
import os
import select
import socket
import sys
import time

mode, d = sys.argv[1], sys.argv[2]
host = socket.gethostname()


def serve():
    for n in ("s.sock", "q.sock", "d.sock"):
        if os.path.exists(os.path.join(d, n)):
            os.unlink(os.path.join(d, n))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(d + "/s.sock")
    s.listen(16)
    q = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    q.bind(d + "/q.sock")
    q.listen(16)
    g = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    g.bind(d + "/d.sock")
    log = open(d + "/dgram.log", "a")
    open(d + "/ready", "w").close()
    conns = {}
    while True:
        r, _, _ = select.select([s, q, g] + list(conns), [], [])
        for x in r:
            if x in (s, q):
                c, _ = x.accept()
                conns[c] = (x is q, b"")
            elif x is g:
                log.write(g.recv(65536).decode() + "\n")
                log.flush()
            else:
                seq, buf = conns[x]
                m = x.recv(65536)
                if not m:
                    x.close()
                    del conns[x]
                elif seq:
                    x.send(m[::-1])
                else:
                    buf += m
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        x.sendall(line.upper() + b"\n")
                    conns[x] = (False, buf)


def ask(c, text):
    c.sendall(text.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        m = c.recv(65536)
        if not m:
            break
        buf += m
    return buf.decode().strip()


def connect(kind, name):
    c = socket.socket(socket.AF_UNIX, kind)
    c.connect(d + "/" + name)
    return c


if mode == "serve":
    serve()
elif mode == "client":
    c = connect(socket.SOCK_STREAM, "s.sock")
    print(ask(c, "hello from " + host))
    big = "x" * 300000
    print("big", len(ask(c, big)))
    c.shutdown(socket.SHUT_WR)
    print("eof", c.recv(10) == b"")
    c.close()
    q = connect(socket.SOCK_SEQPACKET, "q.sock")
    for m in (b"abc", b"12345"):
        q.send(m)
        print("seq", q.recv(100).decode())
    q.close()
    g = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    for i in range(3):
        g.sendto(("dgram %d %s" % (i, host)).encode(), d + "/d.sock")
    print("sent")
elif mode == "keep":
    c = connect(socket.SOCK_STREAM, "s.sock")
    open(d + "/kept", "w").close()
    done = set()
    while True:
        for i in range(1, 10):
            if i in done or not os.path.exists("%s/go%d" % (d, i)):
                continue
            host = socket.gethostname()
            a = ask(c, "%d %s" % (i, host))
            n = connect(socket.SOCK_STREAM, "s.sock")
            b = ask(n, "new %d %s" % (i, host))
            n.close()
            with open("%s/result%d.tmp" % (d, i), "w") as f:
                f.write("%s\n%s\n" % (a, b))
            os.rename("%s/result%d.tmp" % (d, i), "%s/result%d" % (d, i))
            done.add(i)
        time.sleep(0.1)
