# fwd.py DIR MODE: fds that stay home while a process migrates (issue 14
# item 13), driven by fwd.sh. The parent stays home; its child (pid in
# DIR/pid) is migrated between DIR/ready and DIR/go, then both use the
# pipes or sockets they share. Each side checks what it sees and writes
# DIR/result (parent) or DIR/kid (child): PASS or FAIL: why.
#   pipes:   the child writes and closes: the parent reads the data then
#            end of file; the parent writes and closes: the child reads the
#            data then end of file; the child closes a pipe's read end: the
#            parent's write gets EPIPE.
#   sockets: seqpacket, datagram and stream socketpairs: what was sent
#            before the moves read after them, messages both ways
#            with their boundaries, the child's fds still sockets of their
#            type, shutdown(SHUT_WR) seen as end of file with the other
#            direction still open, close seen as end of file / EPIPE.
#   tcp:     the same over a TCP connection (the child the client).
#   names:   getsockname/getpeername of a TCP and a unix connection
#            (the child the client) give after the moves what they gave
#            before them at home; so do SO_DOMAIN and SO_PROTOCOL.
#   creds:   SO_PEERCRED/SO_PEERGROUPS/SO_PEERSEC of a unix connection
#            between two users (neither root), the child the client, give
#            after the moves what they gave at home, never the holder's.
#   fdpass:  a message passing an fd (SCM_RIGHTS) over a forwarded
#            socketpair, each way: not delivered without its fd, the
#            socket shut at both ends (end of file, EPIPE).
#   fdqueued: fds passed to the migrant wait unread in a socket whose
#            other end stays home: krg migrate refuses (fwd.sh checks), it
#            reads them at home.
import os, select, signal, socket, sys, time
d, mode = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
T = 20  # seconds: a hang is a failure

def path(n):
    return os.path.join(d, n)

def wait_file(n):
    end = time.time() + 60
    while not os.path.exists(path(n)):
        if time.time() > end:
            raise TimeoutError("no " + n)
        time.sleep(0.02)

def read_to_eof(fd):
    out, end = b"", time.time() + T
    while True:
        r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
        if not r:
            raise TimeoutError("no end of file after %d bytes" % len(out))
        b = os.read(fd, 65536)
        if not b:
            return out
        out += b

def recv_msg(s):
    r, _, _ = select.select([s], [], [], T)
    if not r:
        raise TimeoutError("no message")
    return s.recv(1 << 20)

def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = recv_msg(s)
        if not b:
            raise EOFError("end of file after %d of %d bytes" % (len(out), n))
        out += b
    return out

def expect_epipe(send):
    end = time.time() + T
    while time.time() < end:
        try:
            send()
        except (BrokenPipeError, ConnectionResetError):
            return
        time.sleep(0.05)
    raise TimeoutError("writes still accepted: no EPIPE")

def pat(n, seed):
    return bytes((i * 13 + seed) % 251 for i in range(n))

def run(name, f):
    try:
        f()
        s = "PASS"
    except Exception as e:
        s = "FAIL: %s: %r" % (mode, e)
    open(path(name), "w").write(s + "\n")
    return s == "PASS"

if mode == "pipes":
    up_r, up_w = os.pipe()        # child -> parent
    down_r, down_w = os.pipe()    # parent -> child
    gone_r, gone_w = os.pipe()    # child closes its read end
    kid = os.fork()
    if kid == 0:
        for fd in (up_r, down_w, gone_w):
            os.close(fd)
        open(path("pid"), "w").write("%d\n" % os.getpid())
        open(path("ready"), "w").close()
        def child():
            wait_file("go")
            os.write(up_w, b"written away " * 1000)
            os.close(up_w)
            got = read_to_eof(down_r)
            if got != b"written at home " * 1000:
                raise ValueError("read %d bytes, not what home wrote" % len(got))
            os.close(gone_r)
            open(path("closed"), "w").close()
            wait_file("end")
        os._exit(0 if run("kid", child) else 1)
    for fd in (up_w, down_r, gone_r):
        os.close(fd)
    def parent():
        wait_file("go")
        got = read_to_eof(up_r)
        if got != b"written away " * 1000:
            raise ValueError("read %d bytes, not what the migrant wrote" % len(got))
        os.write(down_w, b"written at home " * 1000)
        os.close(down_w)
        wait_file("closed")
        expect_epipe(lambda: os.write(gone_w, b"x"))
    ok = run("result", parent)
    open(path("end"), "w").close()
    _, st = os.waitpid(kid, 0)
    sys.exit(0 if ok and st == 0 else 1)

if mode == "sockets":
    sp = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dg = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for p in (sp, dg):
        for s in p:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    st = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sizes = (1, 3000, 50000, 150000, 7)  # 150000: longer than one frame of the pump (60 KiB)
    kid = os.fork()
    if kid == 0:
        for p in (sp, dg, st):
            p[0].close()
        s_sp, s_dg, s_st = sp[1], dg[1], st[1]
        open(path("pid"), "w").write("%d\n" % os.getpid())
        open(path("ready"), "w").close()
        def child():
            wait_file("go")
            # Sent before the moves: queued at home, or where it ran before.
            for s in (s_sp, s_dg):
                for m in (b"early-1", b"early-2"):
                    if recv_msg(s) != m:
                        raise ValueError("%r: the messages sent before the moves are not there" % s.type)
            if recv_exact(s_st, 10) != b"early-byte":
                raise ValueError("stream: the bytes sent before the moves are not there")
            for s, t in ((s_sp, socket.SOCK_SEQPACKET), (s_dg, socket.SOCK_DGRAM), (s_st, socket.SOCK_STREAM)):
                k = socket.socket(fileno=os.dup(s.fileno()))
                if k.type != t:
                    raise ValueError("fd %d is %r after the move, not %r" % (s.fileno(), k.type, t))
                k.close()
            for s in (s_sp, s_dg):
                for i, n in enumerate(sizes):
                    m = recv_msg(s)
                    if m != pat(n, i):
                        raise ValueError("%r message %d: %d bytes, not the %d sent" % (s.type, i, len(m), n))
                    s.send(m[::-1])
            data = recv_exact(s_st, 1 << 20)
            if data != pat(1 << 20, 9):
                raise ValueError("stream: not the MiB sent")
            s_st.sendall(data[::-1])
            s_st.shutdown(socket.SHUT_WR)
            if recv_exact(s_st, 5) != b"after":
                raise ValueError("stream: not what home sent after our shutdown")
            if recv_msg(s_st) != b"":
                raise ValueError("stream: no end of file after home's shutdown")
            s_st.close()
            s_sp.close()
            wait_file("end")
        os._exit(0 if run("kid", child) else 1)
    for p in (sp, dg, st):
        p[1].close()
    s_sp, s_dg, s_st = sp[0], dg[0], st[0]
    for s in (s_sp, s_dg):
        s.send(b"early-1")
        s.send(b"early-2")
    s_st.sendall(b"early-byte")
    def parent():
        wait_file("go")
        for s in (s_sp, s_dg):
            for i, n in enumerate(sizes):
                s.send(pat(n, i))
                m = recv_msg(s)
                if m != pat(n, i)[::-1]:
                    raise ValueError("%r reply %d: %d bytes, not %d" % (s.type, i, len(m), n))
        s_st.sendall(pat(1 << 20, 9))
        if recv_exact(s_st, 1 << 20) != pat(1 << 20, 9)[::-1]:
            raise ValueError("stream: not the MiB sent back")
        if recv_msg(s_st) != b"":
            raise ValueError("stream: no end of file after the migrant's shutdown")
        s_st.sendall(b"after")
        s_st.shutdown(socket.SHUT_WR)
        if recv_msg(s_sp) != b"":
            raise ValueError("seqpacket: no end of file after the migrant closed it")
        expect_epipe(lambda: s_st.send(b"x"))
    ok = run("result", parent)
    open(path("end"), "w").close()
    _, stt = os.waitpid(kid, 0)
    sys.exit(0 if ok and stt == 0 else 1)

if mode == "tcp":
    # A TCP connection: the child (the client) moves, the parent (its
    # server) stays home.
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    addr = l.getsockname()
    kid = os.fork()
    if kid == 0:
        l.close()
        c = socket.create_connection(addr, 10)
        open(path("pid"), "w").write("%d\n" % os.getpid())
        open(path("ready"), "w").close()
        def child():
            wait_file("go")
            k = socket.socket(fileno=os.dup(c.fileno()))
            if k.type != socket.SOCK_STREAM:
                raise ValueError("the connection is %r after the move" % k.type)
            k.close()
            data = recv_exact(c, 1 << 20)
            if data != pat(1 << 20, 5):
                raise ValueError("not the MiB the server sent")
            c.sendall(data[::-1])
            c.shutdown(socket.SHUT_WR)
            if recv_exact(c, 5) != b"after" or recv_msg(c) != b"":
                raise ValueError("not what the server sent after our shutdown, then end of file")
            c.close()
            wait_file("end")
        os._exit(0 if run("kid", child) else 1)
    srv, _ = l.accept()
    l.close()
    def parent():
        wait_file("go")
        srv.sendall(pat(1 << 20, 5))
        if recv_exact(srv, 1 << 20) != pat(1 << 20, 5)[::-1]:
            raise ValueError("not the MiB sent back")
        if recv_msg(srv) != b"":
            raise ValueError("no end of file after the client's shutdown")
        srv.sendall(b"after")
        srv.close()
    ok = run("result", parent)
    open(path("end"), "w").close()
    _, stt = os.waitpid(kid, 0)
    sys.exit(0 if ok and stt == 0 else 1)

if mode == "names":
    # getsockname/getpeername of forwarded sockets answer what they did
    # at home (before: the local socketpair end's, AF_UNIX and unnamed):
    # a TCP connection and a unix one to a named socket, the child the
    # client in both; a short addrlen cuts the address as Linux does;
    # sockets the child makes after the move answer for themselves.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    ul = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upath = path("u.sock")
    ul.bind(upath)
    ul.listen(1)
    addr = l.getsockname()
    kid = os.fork()
    if kid == 0:
        l.close()
        ul.close()
        c = socket.create_connection(addr, 10)
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.connect(upath)
        before = (c.getsockname(), c.getpeername(), u.getsockname(), u.getpeername())
        open(path("pid"), "w").write("%d\n" % os.getpid())
        open(path("ready"), "w").close()
        def child():
            wait_file("go")
            after = (c.getsockname(), c.getpeername(), u.getsockname(), u.getpeername())
            if after != before:
                raise ValueError("addresses %r after the move, %r before" % (after, before))
            opts = [(k.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN), k.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL),
                     k.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)) for k in (c, u)]
            want = [(socket.AF_INET, socket.IPPROTO_TCP, socket.SOCK_STREAM), (socket.AF_UNIX, 0, socket.SOCK_STREAM)]
            if opts != want:
                raise ValueError("SO_DOMAIN, SO_PROTOCOL, SO_TYPE: %r, not %r" % (opts, want))
            buf = ctypes.create_string_buffer(64)
            n = ctypes.c_uint32(4)
            if libc.getpeername(c.fileno(), buf, ctypes.byref(n)) != 0:
                raise OSError(ctypes.get_errno(), "getpeername with a 4-byte buffer")
            port = before[1][1]
            want = socket.AF_INET.to_bytes(2, "little") + port.to_bytes(2, "big")
            if n.value != 16 or buf.raw[:4] != want or buf.raw[4:8] != b"\0" * 4:
                raise ValueError("getpeername cut to 4 bytes: len %d, %r" % (n.value, buf.raw[:8]))
            # Its own sockets, made here: the kernel's answers.
            a, b = socket.socketpair()
            if a.getsockname() != "" or a.family != socket.AF_UNIX:
                raise ValueError("a new socketpair's name: %r" % a.getsockname())
            g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            g.bind(("127.0.0.1", 0))
            if g.getsockname()[0] != "127.0.0.1" or g.getsockname()[1] == 0:
                raise ValueError("a new UDP socket's name: %r" % (g.getsockname(),))
            c.sendall(b"tcp")
            u.sendall(b"unix")
            if recv_exact(c, 2) != b"ok" or recv_exact(u, 2) != b"ok":
                raise ValueError("no answer over the connections")
            wait_file("end")
        os._exit(0 if run("kid", child) else 1)
    srv, _ = l.accept()
    us, _ = ul.accept()
    l.close()
    ul.close()
    def parent():
        wait_file("go")
        if recv_exact(srv, 3) != b"tcp" or recv_exact(us, 4) != b"unix":
            raise ValueError("not what the child sent")
        srv.sendall(b"ok")
        us.sendall(b"ok")
    ok = run("result", parent)
    open(path("end"), "w").close()
    _, stt = os.waitpid(kid, 0)
    sys.exit(0 if ok and stt == 0 else 1)

if mode == "creds":
    # SO_PEERCRED, SO_PEERGROUPS and SO_PEERSEC of a forwarded unix
    # socket give after the moves what home's kernel vouched for at
    # connect time (before: the holder's, root). Started as root, the
    # parent becomes user B (groups 4242, 4343) before it listens, the
    # child user A before it connects: the child's peer is B, the
    # parent's A. The child is the migrant.
    import struct
    A, B = 64001, 64002
    SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # not named by Python 3.11
    def become(uid, groups):
        os.setgroups(groups)
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    def creds(s):
        pid, uid, gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        g = s.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 256)
        groups = sorted(struct.unpack("%dI" % (len(g) // 4), g))
        try:
            sec = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERSEC, 256)
        except OSError as e:
            sec = "errno %d" % e.errno
        return (pid, uid, gid, groups, sec)
    upath = path("c.sock")
    kid = os.fork()
    if kid == 0:
        become(A, [])
        wait_file("listening")
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.connect(upath)
        before, ppid = creds(u), os.getppid()
        open(path("pid"), "w").write("%d\n" % os.getpid())
        open(path("ready"), "w").close()
        def child():
            if before[:4] != (ppid, B, B, [4242, 4343]):
                raise ValueError("at home, before the moves, the peer is %r" % (before,))
            wait_file("go")
            after = creds(u)
            if after != before:
                raise ValueError("peer %r after the moves, %r before (at home)" % (after, before))
            # A short buffer: SO_PEERCRED cut as Linux does, SO_PEERGROUPS
            # ERANGE (the length needed written back, as Linux).
            if u.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 8) != struct.pack("2i", before[0], B):
                raise ValueError("SO_PEERCRED cut to 8 bytes is not pid and uid")
            try:
                u.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4)
                raise ValueError("SO_PEERGROUPS with room for one group of two did not fail")
            except OSError as e:
                if e.errno != 34:
                    raise ValueError("SO_PEERGROUPS with room for one group: errno %d, not ERANGE" % e.errno)
            # A socketpair it makes here answers for itself.
            a, b = socket.socketpair()
            own = creds(a)
            if own[:3] != (os.getpid(), A, A):
                raise ValueError("a new socketpair's peer: %r" % (own,))
            u.sendall(b"creds")
            if recv_exact(u, 2) != b"ok":
                raise ValueError("no answer over the connection")
            wait_file("end")
        os._exit(0 if run("kid", child) else 1)
    become(B, [4242, 4343])
    ul = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ul.bind(upath)
    os.chmod(upath, 0o777)
    ul.listen(1)
    open(path("listening"), "w").close()
    us, _ = ul.accept()
    ul.close()
    def parent():
        got = creds(us)
        if got[:4] != (kid, A, A, []):
            raise ValueError("at home the peer is %r, not the child as user %d" % (got, A))
        wait_file("go")
        if recv_exact(us, 5) != b"creds":
            raise ValueError("not what the child sent")
        if creds(us) != got:
            raise ValueError("at home the peer is %r after the moves, %r before" % (creds(us), got))
        us.sendall(b"ok")
    ok = run("result", parent)
    open(path("end"), "w").close()
    _, stt = os.waitpid(kid, 0)
    sys.exit(0 if ok and stt == 0 else 1)

if mode == "listen":
    # One process with a listening TCP socket: krg migrate refuses by
    # name; it goes on here and still accepts.
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(4)
    open(path("port"), "w").write("%d\n" % l.getsockname()[1])
    open(path("fd"), "w").write("%d\n" % l.fileno())
    open(path("pid"), "w").write("%d\n" % os.getpid())
    open(path("ready"), "w").close()
    def server():
        wait_file("go")
        r, _, _ = select.select([l], [], [], T)
        if not r:
            raise TimeoutError("no client accepted")
        c, _ = l.accept()
        c.sendall(b"served\n")
        c.close()
    sys.exit(0 if run("result", server) else 1)
if mode == "udp":
    # An unconnected UDP socket (it sends to addresses): refused by name;
    # it goes on here, sending and receiving.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    open(path("fd"), "w").write("%d\n" % u.fileno())
    open(path("pid"), "w").write("%d\n" % os.getpid())
    open(path("ready"), "w").close()
    def udp():
        wait_file("go")
        u.sendto(b"to myself", u.getsockname())
        if recv_msg(u) != b"to myself":
            raise ValueError("not what it sent itself")
    sys.exit(0 if run("result", udp) else 1)
if mode == "fdpass":
    # Fds passed over a forwarded unix socket (SCM_RIGHTS) cannot cross
    # nodes: the message is not delivered without them (before: it was,
    # its fds silently dropped); the socket is shut at both ends. The
    # child (moved) sends one on `up`; the parent sends one on `down`.
    up = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    down = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    kid = os.fork()
    if kid == 0:
        up[0].close()
        down[0].close()
        u, dn = up[1], down[1]
        open(path("pid"), "w").write("%d\n" % os.getpid())
        open(path("ready"), "w").close()
        def child():
            wait_file("go")
            u.send(b"plain")  # what went before still goes
            r, w = os.pipe()
            socket.send_fds(u, [b"with-fd"], [r])
            m = recv_msg(dn)
            if m != b"plain-down":
                raise ValueError("down: %r, not the plain message sent before the fd" % m)
            m = recv_msg(dn)
            if m != b"":
                raise ValueError("down: %r without its fd, not end of file" % m)
            expect_epipe(lambda: u.send(b"x"))
            wait_file("end")
        os._exit(0 if run("kid", child) else 1)
    up[1].close()
    down[1].close()
    u, dn = up[0], down[0]
    def parent():
        wait_file("go")
        m = recv_msg(u)
        if m != b"plain":
            raise ValueError("up: %r, not the plain message sent before the fd" % m)
        m = recv_msg(u)
        if m != b"":
            raise ValueError("up: %r without its fd, not end of file" % m)
        dn.send(b"plain-down")
        time.sleep(0.5)  # the plain one first, on its own
        socket.send_fds(dn, [b"with-fd-down"], [u.fileno()])
    ok = run("result", parent)
    open(path("end"), "w").close()
    _, stt = os.waitpid(kid, 0)
    sys.exit(0 if ok and stt == 0 else 1)
if mode == "fdqueued":
    # Fds passed to the child (SCM_RIGHTS) wait unread in its socket, whose
    # other end stays here: krg migrate refuses by name (before: it moved,
    # and the message was never delivered, the socket shut). It goes on
    # here and gets the message with its fd.
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r, w = os.pipe()
    os.write(w, b"through the passed fd")
    os.close(w)
    socket.send_fds(a, [b"with-fd"], [r])
    os.close(r)
    kid = os.fork()
    if kid == 0:
        a.close()
        open(path("fd"), "w").write("%d\n" % b.fileno())
        open(path("pid"), "w").write("%d\n" % os.getpid())
        open(path("ready"), "w").close()
        def child():
            wait_file("go")
            rr, _, _ = select.select([b], [], [], T)
            if not rr:
                raise TimeoutError("no message")
            m, fds, _, _ = socket.recv_fds(b, 64, 4)
            if m != b"with-fd" or len(fds) != 1:
                raise ValueError("got %r with %d fds, not the message with its fd" % (m, len(fds)))
            if os.read(fds[0], 64) != b"through the passed fd":
                raise ValueError("the passed fd does not read what was written")
            b.send(b"ok")
        os._exit(0 if run("result", child) else 1)
    b.close()
    def parent():
        if recv_msg(a) != b"ok":
            raise ValueError("no answer from the child")
    ok = run("parent", parent)
    _, stt = os.waitpid(kid, 0)
    sys.exit(0 if ok and stt == 0 else 1)
sys.exit("fwd.py: unknown mode " + mode)
