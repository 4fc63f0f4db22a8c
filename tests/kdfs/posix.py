#!/usr/bin/env python3
"""posix.py DIR — POSIX checks on a kdfs directory, one case per syscall
and error, in the manner of pjdfstest: each case sets up, calls, and checks
the result or the exact errno. Run as root inside a node; the permission
cases switch to an unprivileged uid in a child. Prints "ok"/"not ok" per
case and exits 1 if any failed. More cases: posix_ext.py."""
import errno
import os
import stat

from casekit import D, as_user, case, eq, expect_errno, finish, p, read, write

assert D


@case
def create_write_read():
    write(p("f1"), b"hello kdfs")
    eq(read(p("f1")), b"hello kdfs", "content")
    st = os.stat(p("f1"))
    eq(st.st_size, 10, "size")
    eq(stat.S_IMODE(st.st_mode), 0o644, "mode")
    eq(stat.S_ISREG(st.st_mode), True, "regular")


@case
def open_excl_exists():
    write(p("ex"), b"x")
    expect_errno(errno.EEXIST, os.open, p("ex"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


@case
def open_missing():
    expect_errno(errno.ENOENT, os.open, p("nope"), os.O_RDONLY)


@case
def open_trunc():
    write(p("tr"), b"0123456789")
    fd = os.open(p("tr"), os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    eq(os.stat(p("tr")).st_size, 0, "size after O_TRUNC")
    eq(read(p("tr")), b"", "content after O_TRUNC")


@case
def open_append():
    write(p("ap"), b"abc")
    fd = os.open(p("ap"), os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"def")
    os.close(fd)
    eq(read(p("ap")), b"abcdef", "appended")


@case
def overwrite_middle():
    write(p("ow"), b"a" * 100000)
    fd = os.open(p("ow"), os.O_WRONLY)
    os.pwrite(fd, b"XYZ", 70000)
    os.close(fd)
    d = read(p("ow"))
    eq(len(d), 100000, "size")
    eq(d[69999:70004], b"aXYZa", "patched bytes")


@case
def sparse_hole_reads_zeros():
    fd = os.open(p("sp"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.pwrite(fd, b"end", 3 * 1024 * 1024)
    os.close(fd)
    d = read(p("sp"))
    eq(len(d), 3 * 1024 * 1024 + 3, "size")
    eq(d[:3 * 1024 * 1024].count(0), 3 * 1024 * 1024, "hole is zeros")
    eq(d[-3:], b"end", "tail")


@case
def large_offset_over_4g():
    off = 5 * 1024 ** 3 + 123
    fd = os.open(p("lg"), os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"far", off)
    eq(os.pread(fd, 3, off), b"far", "read back at 5 GiB")
    eq(os.pread(fd, 4, 4 * 1024 ** 3), b"\0\0\0\0", "hole at 4 GiB")
    os.close(fd)
    eq(os.stat(p("lg")).st_size, off + 3, "size")


@case
def truncate_down_then_up_zeros():
    write(p("tu"), b"y" * 200000)
    os.truncate(p("tu"), 1000)
    eq(os.stat(p("tu")).st_size, 1000, "size after cut")
    os.truncate(p("tu"), 5000)
    d = read(p("tu"))
    eq(len(d), 5000, "size after growth")
    eq(d[:1000], b"y" * 1000, "kept head")
    eq(d[1000:], b"\0" * 4000, "regrown part is zeros")


@case
def truncate_dir_eisdir():
    os.mkdir(p("tdir"))
    expect_errno(errno.EISDIR, os.truncate, p("tdir"), 0)


@case
def mkdir_and_exists():
    os.mkdir(p("m1"), 0o750)
    st = os.stat(p("m1"))
    eq(stat.S_ISDIR(st.st_mode), True, "directory")
    eq(stat.S_IMODE(st.st_mode), 0o750, "mode")
    eq(st.st_nlink, 2, "nlink of a new dir")
    expect_errno(errno.EEXIST, os.mkdir, p("m1"))


@case
def mkdir_parent_nlink():
    os.mkdir(p("pn"))
    os.mkdir(p("pn", "a"))
    os.mkdir(p("pn", "b"))
    eq(os.stat(p("pn")).st_nlink, 4, "parent nlink counts subdirs")
    os.rmdir(p("pn", "a"))
    eq(os.stat(p("pn")).st_nlink, 3, "after rmdir")


@case
def mkdir_missing_parent():
    expect_errno(errno.ENOENT, os.mkdir, p("no", "such"))


@case
def mkdir_under_file():
    write(p("nf"), b"")
    expect_errno(errno.ENOTDIR, os.mkdir, p("nf", "x"))


@case
def rmdir_not_empty():
    os.mkdir(p("ne"))
    write(p("ne", "f"), b"")
    expect_errno(errno.ENOTEMPTY, os.rmdir, p("ne"))


@case
def rmdir_file():
    write(p("rf"), b"")
    expect_errno(errno.ENOTDIR, os.rmdir, p("rf"))


@case
def rmdir_ok():
    os.mkdir(p("rd"))
    os.rmdir(p("rd"))
    expect_errno(errno.ENOENT, os.stat, p("rd"))


@case
def unlink_file():
    write(p("ul"), b"data")
    os.unlink(p("ul"))
    expect_errno(errno.ENOENT, os.stat, p("ul"))


@case
def unlink_dir_eisdir():
    os.mkdir(p("ud"))
    expect_errno(errno.EISDIR, os.unlink, p("ud"))


@case
def unlink_missing():
    expect_errno(errno.ENOENT, os.unlink, p("missing"))


@case
def unlinked_open_file_reads():
    write(p("uo"), b"still here")
    fd = os.open(p("uo"), os.O_RDONLY)
    os.unlink(p("uo"))
    eq(os.pread(fd, 100, 0), b"still here", "read after unlink")
    os.close(fd)


@case
def rename_file():
    write(p("r1"), b"one")
    os.rename(p("r1"), p("r2"))
    expect_errno(errno.ENOENT, os.stat, p("r1"))
    eq(read(p("r2")), b"one", "moved content")


@case
def rename_replaces():
    write(p("ra"), b"A")
    write(p("rb"), b"B")
    os.rename(p("ra"), p("rb"))
    eq(read(p("rb")), b"A", "replaced")
    eq(sorted(x for x in os.listdir(D) if x in ("ra", "rb")), ["rb"], "one name left")


@case
def rename_across_dirs():
    os.mkdir(p("x1"))
    os.mkdir(p("x2"))
    os.mkdir(p("x1", "sub"))
    write(p("x1", "sub", "f"), b"deep")
    os.rename(p("x1", "sub"), p("x2", "sub"))
    eq(read(p("x2", "sub", "f")), b"deep", "moved tree")
    eq(os.stat(p("x1")).st_nlink, 2, "old parent nlink")
    eq(os.stat(p("x2")).st_nlink, 3, "new parent nlink")


@case
def rename_into_own_subdir():
    os.makedirs(p("lo", "op"))
    expect_errno(errno.EINVAL, os.rename, p("lo"), p("lo", "op", "lo"))


@case
def rename_dir_over_nonempty():
    os.mkdir(p("s1"))
    os.mkdir(p("s2"))
    write(p("s2", "f"), b"")
    expect_errno(errno.ENOTEMPTY, os.rename, p("s1"), p("s2"))


@case
def rename_dir_over_file():
    os.mkdir(p("df"))
    write(p("fd"), b"")
    expect_errno(errno.ENOTDIR, os.rename, p("df"), p("fd"))


@case
def rename_file_over_dir():
    write(p("fo"), b"")
    os.mkdir(p("do"))
    expect_errno(errno.EISDIR, os.rename, p("fo"), p("do"))


@case
def rename_missing():
    expect_errno(errno.ENOENT, os.rename, p("nothere"), p("x"))


@case
def chmod_and_ctime():
    write(p("cm"), b"")
    before = os.stat(p("cm")).st_ctime_ns
    os.chmod(p("cm"), 0o600)
    st = os.stat(p("cm"))
    eq(stat.S_IMODE(st.st_mode), 0o600, "mode")
    if st.st_ctime_ns < before:
        raise AssertionError("ctime went back")


@case
def chown_root():
    write(p("co"), b"")
    os.chown(p("co"), 1234, 5678)
    st = os.stat(p("co"))
    eq((st.st_uid, st.st_gid), (1234, 5678), "owner")


@case
def symlink_readlink():
    os.symlink("target/path", p("sl"))
    eq(os.readlink(p("sl")), "target/path", "target")
    eq(stat.S_ISLNK(os.lstat(p("sl")).st_mode), True, "is a link")
    write(p("slt"), b"via link")
    os.symlink("slt", p("sl2"))
    eq(read(p("sl2")), b"via link", "followed")


@case
def symlink_exists():
    write(p("se"), b"")
    expect_errno(errno.EEXIST, os.symlink, "x", p("se"))


@case
def hard_link():
    write(p("h1"), b"shared")
    os.link(p("h1"), p("h2"))
    eq(os.stat(p("h1")).st_nlink, 2, "nlink 2")
    eq(os.stat(p("h1")).st_ino, os.stat(p("h2")).st_ino, "same inode")
    os.unlink(p("h1"))
    eq(os.stat(p("h2")).st_nlink, 1, "nlink 1")
    eq(read(p("h2")), b"shared", "content via the other name")


@case
def hard_link_dir_eperm():
    os.mkdir(p("hd"))
    expect_errno(errno.EPERM, os.link, p("hd"), p("hd2"))


@case
def utimes():
    write(p("ut"), b"")
    os.utime(p("ut"), ns=(1000000000123, 2000000000456))
    st = os.stat(p("ut"))
    eq((st.st_atime_ns, st.st_mtime_ns), (1000000000123, 2000000000456), "times")


@case
def readdir_lists():
    os.mkdir(p("ls"))
    names = {"a", "b", "c.d", "long-" + "x" * 200}
    for n in names:
        write(p("ls", n), b"")
    eq(set(os.listdir(p("ls"))), names, "entries")


@case
def readdir_many():
    os.mkdir(p("many"))
    for i in range(300):
        write(p("many", "f%03d" % i), b"")
    eq(len(os.listdir(p("many"))), 300, "300 entries")


@case
def name_too_long():
    expect_errno(errno.ENAMETOOLONG, os.open, p("n" * 256), os.O_CREAT | os.O_WRONLY, 0o644)


@case
def perm_write_denied():
    write(p("pw"), b"root's", mode=0o644)
    os.chmod(p("pw"), 0o644)
    as_user(4321, lambda: expect_errno(errno.EACCES, os.open, p("pw"), os.O_WRONLY))


@case
def perm_create_in_root_dir_denied():
    os.mkdir(p("rootdir"), 0o755)
    as_user(4321, lambda: expect_errno(errno.EACCES, os.open, p("rootdir", "x"), os.O_CREAT | os.O_WRONLY, 0o644))


@case
def perm_user_creates_owned():
    os.mkdir(p("pub"), 0o777)
    os.chmod(p("pub"), 0o777)

    def mine():
        write(p("pub", "u"), b"u")
        st = os.stat(p("pub", "u"))
        eq((st.st_uid, st.st_gid), (4321, 4321), "owner of a user's file")
    as_user(4321, mine)


@case
def perm_chown_by_user_denied():
    os.mkdir(p("pc"), 0o777)
    os.chmod(p("pc"), 0o777)

    def try_chown():
        write(p("pc", "f"), b"")
        expect_errno(errno.EPERM, os.chown, p("pc", "f"), 0, 0)
    as_user(4321, try_chown)


@case
def perm_chmod_other_denied():
    write(p("pm"), b"")
    as_user(4321, lambda: expect_errno(errno.EPERM, os.chmod, p("pm"), 0o777))


@case
def perm_sticky_dir():
    os.mkdir(p("st"), 0o777)
    os.chmod(p("st"), 0o1777)
    as_user(4321, lambda: write(p("st", "mine"), b""))
    as_user(4322, lambda: expect_errno(errno.EPERM, os.unlink, p("st", "mine")))


@case
def perm_read_denied():
    write(p("pr"), b"secret", mode=0o600)
    os.chmod(p("pr"), 0o600)
    as_user(4321, lambda: expect_errno(errno.EACCES, os.open, p("pr"), os.O_RDONLY))


@case
def suid_cleared_on_write_by_other():
    os.mkdir(p("sg"), 0o777)
    os.chmod(p("sg"), 0o777)

    def mk():
        write(p("sg", "x"), b"")
        os.chmod(p("sg", "x"), 0o4777)
    as_user(4321, mk)
    as_user(4322, lambda: write(p("sg", "x"), b"more", flags=os.O_WRONLY))
    eq(os.stat(p("sg", "x")).st_mode & 0o4000, 0, "set-user-ID cleared by a write")


@case
def statfs_works():
    sv = os.statvfs(D)
    if sv.f_bsize <= 0 or sv.f_namemax != 255:
        raise AssertionError(f"statvfs: {sv}")


@case
def fsync_ok():
    fd = os.open(p("fs"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"synced")
    os.fsync(fd)
    os.close(fd)
    eq(read(p("fs")), b"synced", "content")


finish()
