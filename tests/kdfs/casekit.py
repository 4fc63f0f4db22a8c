"""casekit.py — what the POSIX case files (posix.py, posix_ext.py) share:
the directory under test (argv[1]), the @case runner (a case that cannot
run its checks fails), errno expectations, and running as another user."""
import errno
import os
import stat
import sys

D = sys.argv[1]
failed = 0
count = 0


def finish():
    print(f"{count - failed}/{count} passed")
    sys.exit(1 if failed else 0)


def case(fn):
    global failed, count
    count += 1
    name = fn.__name__
    try:
        fn()
        print(f"ok {count} - {name}")
    except Exception as e:  # a case that cannot run its checks fails
        failed += 1
        print(f"not ok {count} - {name}: {e!r}")
    return fn


def p(*parts):
    return os.path.join(D, *parts)


def expect_errno(err, f, *args):
    try:
        f(*args)
    except OSError as e:
        if e.errno != err:
            raise AssertionError(f"{f.__name__}{args}: errno {errno.errorcode.get(e.errno)}, "
                                 f"expected {errno.errorcode[err]}")
        return
    raise AssertionError(f"{f.__name__}{args} succeeded, expected {errno.errorcode[err]}")


def eq(a, b, what):
    if a != b:
        raise AssertionError(f"{what}: got {a!r}, expected {b!r}")


def write(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=0o644):
    fd = os.open(path, flags, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def as_user(uid, fn):
    """Run fn as uid/gid in a child; its exception becomes ours."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        msg = b""
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            fn()
        except BaseException as e:
            msg = repr(e).encode()
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    msg = os.read(r, 4096)
    os.close(r)
    os.waitpid(pid, 0)
    if msg:
        raise AssertionError("as uid %d: %s" % (uid, msg.decode()))


