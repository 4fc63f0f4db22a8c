#!/usr/bin/env python3
"""reopen.py DIR — a program that finds its files by name wherever it runs
(tests/fsview/fsview.sh): writes DIR/data and keeps DIR/log open; each time
DIR/goN appears, it reopens DIR/data by name and writes DIR/resultN with
the host name it runs on and what it read, and a line in the log."""
import os
import socket
import sys
import time

d = sys.argv[1]
os.makedirs(d, exist_ok=True)
with open(d + "/data", "w") as f:
    f.write("payload\n")
log = open(d + "/log", "a")
done = set()
while True:
    for i in range(1, 10):
        if i in done or not os.path.exists("%s/go%d" % (d, i)):
            continue
        with open(d + "/data") as f:
            data = f.read().strip()
        host = socket.gethostname()
        log.write("%d %s\n" % (i, host))
        log.flush()
        with open("%s/result%d.tmp" % (d, i), "w") as r:
            r.write("%s %s\n" % (host, data))
        os.rename("%s/result%d.tmp" % (d, i), "%s/result%d" % (d, i))
        done.add(i)
    time.sleep(0.1)
