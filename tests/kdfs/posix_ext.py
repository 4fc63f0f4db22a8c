#!/usr/bin/env python3
"""posix_ext.py DIR — more POSIX cases on a kdfs directory (see posix.py):
extended attributes, fallocate, statfs, utimensat's UTIME_NOW/UTIME_OMIT,
mknod of FIFOs, sockets and devices, chown and set-ID rules, link counts,
renameat2's flags, name and path lengths, readdir while the directory
changes. Errors are Linux's (ext4/tmpfs). Exits 1 if any case failed."""
import ctypes
import errno
import os
import socket
import stat
import time

from casekit import D, as_user, case, eq, expect_errno, finish, p, read, write

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_ZERO_RANGE = 8, 16


def _check(rc, what):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return rc


def renameat2(a, b, flags):
    _check(libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), ctypes.c_uint(flags)), "renameat2")


def fallocate(path, mode, off, length):
    fd = os.open(path, os.O_RDWR)
    try:
        _check(libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length)), "fallocate")
    finally:
        os.close(fd)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, a, m):
    ts = (Timespec * 2)(Timespec(*a), Timespec(*m))
    _check(libc.utimensat(AT_FDCWD, path.encode(), ts, 0), "utimensat")


def getxattr_raw(path, name, size):
    """getxattr(2) with exactly `size` bytes of buffer (os.getxattr grows its own)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _check(libc.getxattr(path.encode(), name.encode(), buf if size else None, ctypes.c_size_t(size)),
               "getxattr")
    return n, buf.raw[:n] if size else b""


# ---- extended attributes ----

@case
def xattr_set_get():
    write(p("xa"), b"")
    os.setxattr(p("xa"), "user.colour", b"blue")
    eq(os.getxattr(p("xa"), "user.colour"), b"blue", "value")
    os.setxattr(p("xa"), "user.colour", b"green and longer")
    eq(os.getxattr(p("xa"), "user.colour"), b"green and longer", "replaced value")
    os.setxattr(p("xa"), "user.empty", b"")
    eq(os.getxattr(p("xa"), "user.empty"), b"", "empty value")


@case
def xattr_get_missing_enodata():
    write(p("xm"), b"")
    expect_errno(errno.ENODATA, os.getxattr, p("xm"), "user.none")


@case
def xattr_create_flag_eexist():
    write(p("xc"), b"")
    os.setxattr(p("xc"), "user.a", b"1", os.XATTR_CREATE)
    expect_errno(errno.EEXIST, os.setxattr, p("xc"), "user.a", b"2", os.XATTR_CREATE)
    eq(os.getxattr(p("xc"), "user.a"), b"1", "value kept")


@case
def xattr_replace_flag_enodata():
    write(p("xr"), b"")
    expect_errno(errno.ENODATA, os.setxattr, p("xr"), "user.a", b"1", os.XATTR_REPLACE)
    os.setxattr(p("xr"), "user.a", b"1")
    os.setxattr(p("xr"), "user.a", b"2", os.XATTR_REPLACE)
    eq(os.getxattr(p("xr"), "user.a"), b"2", "replaced")


@case
def xattr_size_query_and_erange():
    write(p("xs"), b"")
    os.setxattr(p("xs"), "user.big", b"0123456789")
    eq(getxattr_raw(p("xs"), "user.big", 0)[0], 10, "size 0 gives the size")
    expect_errno(errno.ERANGE, getxattr_raw, p("xs"), "user.big", 5)
    eq(getxattr_raw(p("xs"), "user.big", 10), (10, b"0123456789"), "exact buffer")


@case
def xattr_value_too_big_e2big():
    write(p("xb"), b"")
    os.setxattr(p("xb"), "user.max", b"v" * 65536)
    eq(len(os.getxattr(p("xb"), "user.max")), 65536, "64 KiB value")
    expect_errno(errno.E2BIG, os.setxattr, p("xb"), "user.over", b"v" * 65537)


@case
def xattr_name_too_long_erange():
    write(p("xn"), b"")
    os.setxattr(p("xn"), "user." + "n" * 250, b"ok")
    expect_errno(errno.ERANGE, os.setxattr, p("xn"), "user." + "n" * 251, b"x")


@case
def xattr_list_and_remove():
    write(p("xl"), b"")
    for n in ("user.b", "user.a", "user.c"):
        os.setxattr(p("xl"), n, b"v")
    eq(sorted(os.listxattr(p("xl"))), ["user.a", "user.b", "user.c"], "listed")
    os.removexattr(p("xl"), "user.b")
    eq(sorted(os.listxattr(p("xl"))), ["user.a", "user.c"], "after remove")
    expect_errno(errno.ENODATA, os.removexattr, p("xl"), "user.b")
    expect_errno(errno.ENODATA, os.getxattr, p("xl"), "user.b")


@case
def xattr_on_directory():
    os.mkdir(p("xd"))
    os.setxattr(p("xd"), "user.d", b"dir")
    eq(os.getxattr(p("xd"), "user.d"), b"dir", "directory xattr")


@case
def xattr_user_on_symlink_eperm():
    os.symlink("target", p("xsl"))
    expect_errno(errno.EPERM, lambda: os.setxattr(p("xsl"), "user.a", b"1", 0, follow_symlinks=False))


@case
def xattr_changes_ctime():
    write(p("xt"), b"")
    before = os.stat(p("xt")).st_ctime_ns
    time.sleep(0.01)
    os.setxattr(p("xt"), "user.t", b"1")
    if os.stat(p("xt")).st_ctime_ns <= before:
        raise AssertionError("ctime did not move on setxattr")


@case
def xattr_trusted_root_only():
    os.mkdir(p("xtr"), 0o777)
    os.chmod(p("xtr"), 0o777)
    write(p("xtr", "f"), b"", mode=0o666)
    os.chmod(p("xtr", "f"), 0o666)
    os.setxattr(p("xtr", "f"), "trusted.secret", b"root")
    os.setxattr(p("xtr", "f"), "user.open", b"all")
    eq(os.getxattr(p("xtr", "f"), "trusted.secret"), b"root", "root reads trusted.*")

    def user():
        expect_errno(errno.EPERM, os.setxattr, p("xtr", "f"), "trusted.mine", b"x")
        expect_errno(errno.ENODATA, os.getxattr, p("xtr", "f"), "trusted.secret")
        eq(os.listxattr(p("xtr", "f")), ["user.open"], "a user's listxattr hides trusted.*")
    as_user(4321, user)


@case
def xattr_user_needs_write_permission():
    write(p("xp"), b"", mode=0o644)
    os.chmod(p("xp"), 0o644)
    os.setxattr(p("xp"), "user.r", b"1")

    def user():
        eq(os.getxattr(p("xp"), "user.r"), b"1", "read with read permission")
        expect_errno(errno.EACCES, os.setxattr, p("xp"), "user.w", b"1")
        expect_errno(errno.EACCES, os.removexattr, p("xp"), "user.r")
    as_user(4321, user)


@case
def xattr_posix_acl_unsupported():
    write(p("xacl"), b"")
    expect_errno(errno.EOPNOTSUPP, os.setxattr, p("xacl"), "system.posix_acl_access", b"\x02\x00\x00\x00")


# ---- fallocate ----

@case
def fallocate_extends_with_zeros():
    write(p("fa"), b"abc")
    fallocate(p("fa"), 0, 0, 100000)
    eq(os.stat(p("fa")).st_size, 100000, "size after fallocate")
    d = read(p("fa"))
    eq(d[:3], b"abc", "data kept")
    eq(d[3:], b"\0" * (100000 - 3), "new range reads zeros")


@case
def fallocate_keep_size():
    write(p("fk"), b"abc")
    fallocate(p("fk"), FALLOC_FL_KEEP_SIZE, 0, 100000)
    eq(os.stat(p("fk")).st_size, 3, "size kept")


@case
def fallocate_punch_hole():
    write(p("fp"), b"x" * 200000)
    fallocate(p("fp"), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 150000)
    d = read(p("fp"))
    eq(len(d), 200000, "size kept")
    eq((d[:1000], d[1000:151000], d[151000:]), (b"x" * 1000, b"\0" * 150000, b"x" * 49000), "hole")


@case
def fallocate_punch_past_eof_keeps_size():
    write(p("fpe"), b"y" * 1000)
    fallocate(p("fpe"), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 500, 100000)
    eq(read(p("fpe")), b"y" * 500 + b"\0" * 500, "punched to EOF, size kept")


@case
def fallocate_zero_range_extends():
    write(p("fz"), b"z" * 1000)
    fallocate(p("fz"), FALLOC_FL_ZERO_RANGE, 900, 200)
    eq(read(p("fz")), b"z" * 900 + b"\0" * 200, "zeroed and extended")


@case
def fallocate_punch_without_keep_size_eopnotsupp():
    write(p("fe"), b"e" * 10)
    expect_errno(errno.EOPNOTSUPP, fallocate, p("fe"), FALLOC_FL_PUNCH_HOLE, 0, 5)


@case
def fallocate_collapse_eopnotsupp():
    write(p("fc"), b"c" * 8192)
    expect_errno(errno.EOPNOTSUPP, fallocate, p("fc"), FALLOC_FL_COLLAPSE_RANGE, 0, 4096)


@case
def fallocate_bad_length_einval():
    write(p("fl"), b"")
    expect_errno(errno.EINVAL, fallocate, p("fl"), 0, 0, 0)


@case
def fallocate_read_only_fd_ebadf():
    write(p("fr"), b"")
    fd = os.open(p("fr"), os.O_RDONLY)
    try:
        expect_errno(errno.EBADF, lambda: _check(libc.fallocate(fd, 0, ctypes.c_long(0), ctypes.c_long(10)),
                                                 "fallocate"))
    finally:
        os.close(fd)


# ---- statfs ----

@case
def statfs_fields():
    sv = os.statvfs(D)
    if not (sv.f_blocks > 0 and sv.f_bfree <= sv.f_blocks and sv.f_bavail <= sv.f_bfree and sv.f_files > 0
            and sv.f_ffree <= sv.f_files and sv.f_namemax == 255 and sv.f_frsize > 0):
        raise AssertionError(f"statvfs: {sv}")


# ---- utimensat ----

@case
def utimensat_omit_keeps_mtime():
    write(p("ut"), b"")
    os.utime(p("ut"), ns=(1_000_000_000, 2_000_000_000))
    utimensat(p("ut"), (0, UTIME_NOW), (0, UTIME_OMIT))
    st = os.stat(p("ut"))
    eq(st.st_mtime_ns, 2_000_000_000, "mtime kept by UTIME_OMIT")
    if abs(st.st_atime - time.time()) > 60:
        raise AssertionError(f"atime not set to now: {st.st_atime}")


@case
def utimensat_both_omit_changes_nothing():
    write(p("uo"), b"")
    os.utime(p("uo"), ns=(3_000_000_000, 4_000_000_000))
    c = os.stat(p("uo")).st_ctime_ns
    time.sleep(0.01)
    utimensat(p("uo"), (0, UTIME_OMIT), (0, UTIME_OMIT))
    st = os.stat(p("uo"))
    eq((st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns), (3_000_000_000, 4_000_000_000, c), "times")


@case
def utimensat_exact_nanoseconds():
    write(p("un"), b"")
    utimensat(p("un"), (5, 123456789), (6, 987654321))
    st = os.stat(p("un"))
    eq((st.st_atime_ns, st.st_mtime_ns), (5_123_456_789, 6_987_654_321), "times")


@case
def utimensat_now_by_writer_not_owner():
    write(p("uw"), b"", mode=0o666)
    os.chmod(p("uw"), 0o666)
    os.utime(p("uw"), ns=(0, 0))

    def user():
        utimensat(p("uw"), (0, UTIME_NOW), (0, UTIME_NOW))
        expect_errno(errno.EPERM, utimensat, p("uw"), (1, 0), (1, 0))
    as_user(4321, user)
    if os.stat(p("uw")).st_mtime < time.time() - 60:
        raise AssertionError("UTIME_NOW by a writer did not set mtime")


@case
def utimensat_now_without_write_eacces():
    write(p("ua"), b"", mode=0o644)
    os.chmod(p("ua"), 0o644)
    as_user(4321, lambda: expect_errno(errno.EACCES, utimensat, p("ua"), (0, UTIME_NOW), (0, UTIME_NOW)))


# ---- mknod: FIFOs, sockets, devices ----

def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


@case
def mkfifo_and_use():
    os.mkfifo(p("fifo"), 0o640)
    st = os.lstat(p("fifo"))
    eq((stat.S_ISFIFO(st.st_mode), stat.S_IMODE(st.st_mode)), (True, 0o640 & ~_umask()), "fifo")
    r = os.open(p("fifo"), os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(p("fifo"), os.O_WRONLY)
    os.write(w, b"through the pipe")
    eq(os.read(r, 100), b"through the pipe", "FIFO data")
    os.close(r)
    os.close(w)
    expect_errno(errno.EEXIST, os.mkfifo, p("fifo"))


@case
def unix_socket_bind_connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(p("sock"))
    s.listen(1)
    eq(stat.S_ISSOCK(os.lstat(p("sock")).st_mode), True, "socket file")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(p("sock"))
    a, _ = s.accept()
    c.sendall(b"hi")
    eq(a.recv(10), b"hi", "socket data")
    for x in (a, c, s):
        x.close()
    expect_errno(errno.EADDRINUSE, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).bind, p("sock"))


@case
def mknod_char_device_root():
    os.mknod(p("null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    st = os.lstat(p("null"))
    eq((stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev)), (True, 1, 3), "char device")


@case
def mknod_device_by_user_eperm():
    os.mkdir(p("mkd"), 0o777)
    os.chmod(p("mkd"), 0o777)
    as_user(4321, lambda: expect_errno(errno.EPERM, os.mknod, p("mkd", "dev"), 0o666 | stat.S_IFCHR,
                                       os.makedev(1, 3)))


@case
def mknod_regular():
    os.mknod(p("mreg"), 0o600 | stat.S_IFREG)
    eq(stat.S_ISREG(os.lstat(p("mreg")).st_mode), True, "regular file by mknod")


# ---- chown and set-ID bits ----

@case
def chown_clears_suid_sgid():
    write(p("cs"), b"")
    os.chmod(p("cs"), 0o6755)
    os.chown(p("cs"), 1000, 1000)
    eq(stat.S_IMODE(os.stat(p("cs")).st_mode), 0o755, "set-ID bits after chown")


@case
def chown_keeps_sgid_without_group_exec():
    write(p("cg"), b"")
    os.chmod(p("cg"), 0o2745)  # mandatory-locking marker: kept, as Linux does
    os.chown(p("cg"), 1000, 1000)
    eq(stat.S_IMODE(os.stat(p("cg")).st_mode), 0o2745, "mode after chown")


@case
def chown_dir_keeps_sgid():
    os.mkdir(p("cdir"))
    os.chmod(p("cdir"), 0o2755)
    os.chown(p("cdir"), 1000, 1000)
    eq(stat.S_IMODE(os.stat(p("cdir")).st_mode), 0o2755, "directory keeps set-group-ID")


@case
def chown_minus_one_changes_nothing():
    write(p("cm"), b"")
    os.chown(p("cm"), 1234, 5678)
    os.chown(p("cm"), -1, -1)
    st = os.stat(p("cm"))
    eq((st.st_uid, st.st_gid), (1234, 5678), "owner")


@case
def chown_user_gives_away_eperm():
    os.mkdir(p("cu"), 0o777)
    os.chmod(p("cu"), 0o777)

    def user():
        write(p("cu", "f"), b"")
        expect_errno(errno.EPERM, os.chown, p("cu", "f"), 4322, -1)
        expect_errno(errno.EPERM, os.chown, p("cu", "f"), -1, 0)
        os.chown(p("cu", "f"), 4321, 4321)  # to oneself: allowed
    as_user(4321, user)


@case
def setgid_dir_inheritance():
    os.mkdir(p("sgd"))
    os.chown(p("sgd"), 0, 777)
    os.chmod(p("sgd"), 0o2777)
    write(p("sgd", "f"), b"")
    os.mkdir(p("sgd", "sub"))
    eq(os.stat(p("sgd", "f")).st_gid, 777, "file's group from the directory")
    st = os.stat(p("sgd", "sub"))
    eq((st.st_gid, bool(st.st_mode & stat.S_ISGID)), (777, True), "subdirectory inherits group and bit")


@case
def sgid_cleared_on_write_by_other():
    os.mkdir(p("sw"), 0o777)
    os.chmod(p("sw"), 0o777)

    def mk():
        write(p("sw", "x"), b"")
        os.chmod(p("sw", "x"), 0o2777)
    as_user(4321, mk)
    as_user(4322, lambda: write(p("sw", "x"), b"more", flags=os.O_WRONLY))
    eq(os.stat(p("sw", "x")).st_mode & 0o2000, 0, "set-group-ID cleared by a write")


@case
def suid_cleared_on_truncate_by_owner():
    os.mkdir(p("so"), 0o777)
    os.chmod(p("so"), 0o777)

    def mk():
        write(p("so", "x"), b"data")
        os.chmod(p("so", "x"), 0o4755)
        os.truncate(p("so", "x"), 1)
        eq(os.stat(p("so", "x")).st_mode & 0o4000, 0, "set-user-ID cleared by the owner's truncate")
    as_user(4321, mk)


# ---- link counts ----

@case
def link_counts():
    write(p("lc"), b"")
    os.link(p("lc"), p("lc2"))
    os.link(p("lc"), p("lc3"))
    eq(os.stat(p("lc")).st_nlink, 3, "three names")
    os.unlink(p("lc2"))
    eq(os.stat(p("lc3")).st_nlink, 2, "after unlink")
    os.mkdir(p("ld"))
    os.mkdir(p("ld", "a"))
    os.mkdir(p("ld", "b"))
    eq(os.stat(p("ld")).st_nlink, 4, "directory with two subdirectories")
    os.rename(p("ld", "a"), p("ld", "b", "a"))
    eq((os.stat(p("ld")).st_nlink, os.stat(p("ld", "b")).st_nlink), (3, 3), "after moving a subdirectory")
    os.rmdir(p("ld", "b", "a"))
    eq(os.stat(p("ld", "b")).st_nlink, 2, "after rmdir")


@case
def unlinked_open_file_nlink_zero():
    write(p("lu"), b"x")
    fd = os.open(p("lu"), os.O_RDONLY)
    try:
        os.unlink(p("lu"))
        eq(os.fstat(fd).st_nlink, 0, "link count of an open, unlinked file")
        expect_errno(errno.ENOENT, os.link, p("lu"), p("lu2"))
    finally:
        os.close(fd)


# ---- renameat2 ----

@case
def rename_noreplace():
    write(p("rn1"), b"1")
    write(p("rn2"), b"2")
    expect_errno(errno.EEXIST, renameat2, p("rn1"), p("rn2"), RENAME_NOREPLACE)
    renameat2(p("rn1"), p("rn3"), RENAME_NOREPLACE)
    eq((read(p("rn2")), read(p("rn3")), os.path.exists(p("rn1"))), (b"2", b"1", False), "after")


@case
def rename_exchange_files():
    write(p("rx1"), b"one")
    write(p("rx2"), b"two")
    renameat2(p("rx1"), p("rx2"), RENAME_EXCHANGE)
    eq((read(p("rx1")), read(p("rx2"))), (b"two", b"one"), "swapped")


@case
def rename_exchange_dir_and_file_across_dirs():
    os.mkdir(p("rxa"))
    os.mkdir(p("rxb"))
    os.mkdir(p("rxa", "d"))
    write(p("rxb", "f"), b"file")
    renameat2(p("rxa", "d"), p("rxb", "f"), RENAME_EXCHANGE)
    eq((os.path.isdir(p("rxb", "f")), read(p("rxa", "d"))), (True, b"file"), "swapped across")
    eq((os.stat(p("rxa")).st_nlink, os.stat(p("rxb")).st_nlink), (2, 3), "parents' link counts")


@case
def rename_exchange_missing_enoent():
    write(p("rxm"), b"")
    expect_errno(errno.ENOENT, renameat2, p("rxm"), p("rxnone"), RENAME_EXCHANGE)


@case
def rename_exchange_noreplace_einval():
    write(p("rxe1"), b"")
    write(p("rxe2"), b"")
    expect_errno(errno.EINVAL, renameat2, p("rxe1"), p("rxe2"), RENAME_EXCHANGE | RENAME_NOREPLACE)


@case
def rename_whiteout_unsupported():
    write(p("rw"), b"")
    try:
        renameat2(p("rw"), p("rw2"), RENAME_WHITEOUT)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EPERM):
            raise
        return
    raise AssertionError("RENAME_WHITEOUT succeeded")


@case
def rename_dot_ebusy_or_einval():
    os.mkdir(p("rdot"))
    try:
        os.rename(p("rdot", "."), p("rdot2"))
    except OSError as e:
        if e.errno not in (errno.EBUSY, errno.EINVAL):
            raise
        return
    raise AssertionError("rename of '.' succeeded")


@case
def rename_ctime_moves():
    write(p("rc"), b"")
    before = os.stat(p("rc")).st_ctime_ns
    time.sleep(0.01)
    os.rename(p("rc"), p("rc2"))
    if os.stat(p("rc2")).st_ctime_ns <= before:
        raise AssertionError("rename did not change ctime")


# ---- names and paths ----

@case
def name_255_ok_256_enametoolong():
    n255, n256 = "a" * 255, "b" * 256
    write(p(n255), b"ok")
    eq(read(p(n255)), b"ok", "255-byte name")
    os.mkdir(p("d" * 255))
    for f, args in ((os.mkdir, (p(n256),)), (os.symlink, ("x", p(n256))), (os.link, (p(n255), p(n256))),
                    (os.rename, (p(n255), p(n256))), (os.mkfifo, (p(n256),)), (os.stat, (p(n256),))):
        expect_errno(errno.ENAMETOOLONG, f, *args)
    eq(n255 in os.listdir(D), True, "listed")


@case
def deep_path():
    base = p("deep")
    os.mkdir(base)
    fd = os.open(base, os.O_RDONLY)
    depth = 0
    try:
        for depth in range(1, 121):  # 120 * 41 bytes: past PATH_MAX
            os.mkdir("x" * 40, dir_fd=fd)
            nfd = os.open("x" * 40, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        write_fd = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(write_fd, b"deep")
        os.close(write_fd)
    finally:
        os.close(fd)
    long_path = os.path.join(base, *(["x" * 40] * depth), "leaf")
    expect_errno(errno.ENAMETOOLONG, os.stat, long_path)
    short = os.path.join(base, *(["x" * 40] * 90))
    eq(os.path.isdir(short), True, "a 3.7 KB path")


# ---- readdir while the directory changes ----

@case
def readdir_stable_under_removal():
    os.mkdir(p("rs"))
    names = ["f%04d" % i for i in range(600)]
    for n in names:
        write(p("rs", n), b"")
    seen = []
    removed = set()
    with os.scandir(p("rs")) as it:
        for e in it:
            seen.append(e.name)
            if len(seen) == 50:
                for n in seen:  # every entry read so far goes
                    os.unlink(p("rs", n))
                    removed.add(n)
    dup = {n for n in seen if seen.count(n) > 1}
    missing = [n for n in names if n not in removed and n not in seen]
    eq((sorted(dup), missing[:5], len(missing)), ([], [], 0), "entries repeated / skipped")


@case
def readdir_stable_under_creation():
    os.mkdir(p("rc_"))
    names = ["g%04d" % i for i in range(400)]
    for n in names:
        write(p("rc_", n), b"")
    seen = []
    with os.scandir(p("rc_")) as it:
        for e in it:
            seen.append(e.name)
            if len(seen) == 30:
                for i in range(200):
                    write(p("rc_", "a%04d" % i), b"")
    old = [n for n in seen if n.startswith("g")]
    eq((len(old), len(set(old))), (400, 400), "every old entry once")


@case
def readdir_rewind_sees_new():
    os.mkdir(p("rr"))
    write(p("rr", "one"), b"")
    eq(sorted(os.listdir(p("rr"))), ["one"], "first listing")
    write(p("rr", "two"), b"")
    eq(sorted(os.listdir(p("rr"))), ["one", "two"], "a new listing sees the new entry")


finish()
