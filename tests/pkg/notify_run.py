#!/usr/bin/env python3
"""Start the ExecStart line of krgd.service the way systemd starts a
Type=notify service, without systemd: NOTIFY_SOCKET names a datagram
socket this script reads, stderr is a "journal stream" ($JOURNAL_STREAM
names its device and inode), RUNTIME_DIRECTORY and STATE_DIRECTORY are
set. Checks: READY=1 arrives (with krgd's pid as MAINPID) and the API
serves by then; SIGTERM brings STOPPING=1 and exit status 0; log lines
carry a syslog priority prefix and no timestamp.

usage: notify_run.py UNIT_FILE KRGADM LOG_FILE"""
import os
import shlex
import signal
import socket
import subprocess
import sys
import time


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def exec_start(unit):
    """The ExecStart= command of the [Service] section, split as systemd does
    for a line without specifiers or variables (the test checks there are
    none)."""
    section = None
    for line in open(unit):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line.startswith("ExecStart="):
            cmd = line[len("ExecStart="):]
            if "$" in cmd or "%" in cmd:
                fail("ExecStart has variables or specifiers this test does not expand: " + cmd)
            return shlex.split(cmd.lstrip("-@:+!"))
    fail("no ExecStart= in [Service] of " + unit)


def recv_until(sock, key, deadline, proc):
    """Notification datagrams until one has key=...; returns its fields."""
    while time.time() < deadline:
        if proc.poll() is not None:
            fail(f"krgd exited with {proc.returncode} before sending {key}")
        sock.settimeout(0.2)
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            continue
        fields = dict(l.split("=", 1) for l in data.split("\n") if "=" in l)
        print("notify:", fields)
        if key in fields:
            return fields
    fail(f"no {key} within the time limit")


def main():
    unit, krgadm, log = sys.argv[1:4]
    argv = exec_start(unit)
    sock_path = "/run/krg-notify-test.sock"
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    logf = open(log, "w")
    st = os.fstat(logf.fileno())
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
               RUNTIME_DIRECTORY="/run/krg", STATE_DIRECTORY="/var/lib/krg", INVOCATION_ID="0" * 32)
    os.makedirs("/run/krg", mode=0o755, exist_ok=True)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env)
    ready = recv_until(sock, "READY", time.time() + 30, proc)
    if ready.get("READY") != "1":
        fail("READY is not 1: " + str(ready))
    if ready.get("MAINPID") != str(proc.pid):
        fail(f"MAINPID {ready.get('MAINPID')} is not krgd's pid {proc.pid}")
    # Ready means serving: the API answers at once, no retry.
    st = subprocess.run([krgadm, "cluster", "status", "--socket", "/run/krg/krgd.sock"],
                        capture_output=True, text=True, timeout=10)
    if st.returncode != 0:
        fail("krgadm cluster status right after READY=1: " + st.stderr.strip())
    print(st.stdout.strip().splitlines()[0])
    proc.send_signal(signal.SIGTERM)
    recv_until(sock, "STOPPING", time.time() + 30, proc)
    rc = proc.wait(timeout=30)
    if rc != 0:
        fail(f"krgd exited {rc} after SIGTERM")
    logf.close()
    lines = open(log).read().splitlines()
    print("log:", *lines[:3], sep="\n  ")
    if not any(l.startswith("<6>krgd[1] info: ") and "listening on" in l for l in lines):
        fail("no '<6>krgd[1] info: ... listening on' line for the journal")
    if not lines[-1].startswith("<6>krgd[1] info: stopped"):
        fail("last line is not '<6>krgd[1] info: stopped': " + lines[-1])
    if any(not l.startswith("<") for l in lines):
        fail("a log line without a priority prefix: " + next(l for l in lines if not l.startswith("<")))
    print("ok: READY=1 with MAINPID, API served, STOPPING=1 and exit 0 on SIGTERM, journal priorities")


main()
