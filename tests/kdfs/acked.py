#!/usr/bin/env python3
"""Writer and checker for "no acknowledged byte lost" (tests/kdfs/kdfs.sh).

  acked.py write FILE ACK STOP: append 4 KiB records (record i is "%08d" % i
      repeated) with fsync after each, and after each fsync write the count
      acknowledged so far to ACK (a file off kdfs), until STOP exists
  acked.py check FILE N: FILE holds at least N records, each the right one
"""
import os
import sys
import time


def record(i):
    return (b"%08d" % i) * 512


def write(path, ack, stop):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    n = 0
    while not os.path.exists(stop):
        os.write(fd, record(n))
        os.fsync(fd)
        n += 1
        with open(ack + ".tmp", "w") as f:
            f.write(str(n))
        os.rename(ack + ".tmp", ack)
        time.sleep(0.01)
    os.close(fd)


def check(path, n):
    with open(path, "rb") as f:
        data = f.read()
    have = len(data) // 4096
    if have < n:
        sys.exit("acked.py: %d records acknowledged, %d in the file" % (n, have))
    for i in range(have):
        if data[i * 4096:(i + 1) * 4096] != record(i):
            sys.exit("acked.py: record %d is wrong" % i)
    print(have)


if len(sys.argv) == 5 and sys.argv[1] == "write":
    write(*sys.argv[2:5])
elif len(sys.argv) == 4 and sys.argv[1] == "check":
    check(sys.argv[2], int(sys.argv[3]))
else:
    sys.exit("usage: acked.py write FILE ACK STOP | check FILE N")
