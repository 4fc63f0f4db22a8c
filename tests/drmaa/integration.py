#!/usr/bin/python3
"""Debian's python3-drmaa, unmodified, against krg's libdrmaa on a vcluster
(run by tests/drmaa/python.sh inside node 1, DRMAA_LIBRARY_PATH set).
argv[1]: a scratch directory. Prints one line per check; exits non-zero
at the first failure."""
import json
import os
import subprocess
import sys
import time

import drmaa
from drmaa.const import JobControlAction, JobState

D = sys.argv[1]
KRG = os.environ.get("KRG", "krg")  # the krg CLI of the build under test


def check(cond, what):
    if not cond:
        print("FAIL:", what, flush=True)
        sys.exit(1)
    print("ok:", what, flush=True)


def expect(exc, what, f, *a):
    try:
        f(*a)
    except exc as e:
        print("ok:", what, "->", type(e).__name__, str(e)[:100], flush=True)
        return
    print("FAIL:", what, "raised nothing", flush=True)
    sys.exit(1)


def wait_state(s, jid, states, secs=20):
    end = time.time() + secs
    while time.time() < end:
        st = s.jobStatus(jid)
        if st in states:
            return st
        time.sleep(0.05)
    return s.jobStatus(jid)


def child_state(command):
    """State of the job's child running `command` (krg ps)."""
    ps = json.loads(subprocess.check_output([KRG, "ps", "--json"]))
    for p in ps["processes"]:
        if p["command"] == command:
            return p["state"]
    return None


def krg_state(krg_id):
    ps = json.loads(subprocess.check_output([KRG, "ps", "--json"]))
    for p in ps["processes"]:
        if p["id"] == krg_id:
            return p["state"]
    return None


s = drmaa.Session()
expect(drmaa.errors.NoActiveSessionException, "createJobTemplate before init", s.createJobTemplate)
s.initialize()
contact = s.contact
check(contact != "", "contact string %s" % contact)
check(str(s.version) in ("1.0", "Version(major=1, minor=0)") or s.version.major == 1, "version %s" % (s.version,))
check("krg" in s.drmsInfo, "DRM system %s" % s.drmsInfo)
check("DRMAA 1.0" in s.drmaaImplementation, "implementation %s" % s.drmaaImplementation)
expect(drmaa.errors.AlreadyActiveSessionException, "second initialize", s.initialize)

jt = s.createJobTemplate()
names = set(jt.attributeNames)
check({"drmaa_remote_command", "drmaa_wd", "drmaa_js_state", "drmaa_output_path", "drmaa_wct_hlimit"} <= names,
      "attribute names (%d)" % len(names))

# Single job on node 2: stdout/stderr joined into a file, env, exit status, rusage.
jt.remoteCommand = "/bin/sh"
jt.args = ["-c", "echo out on $(hostname) $KRG_T; echo err >&2; exit 3"]
jt.jobEnvironment = {"KRG_T": "forty-two"}
jt.workingDirectory = D
jt.outputPath = ":$drmaa_wd_ph$/single.out"
jt.joinFiles = True
jt.nativeSpecification = "-n 2"
jt.jobName = "single"
jid = s.runJob(jt)
info = s.wait(jid, drmaa.Session.TIMEOUT_WAIT_FOREVER)
check(info.hasExited and info.exitStatus == 3, "single job exit status 3 (%s)" % (info.exitStatus,))
check(not info.hasSignal and not info.wasAborted, "single job not signaled, not aborted")
ru = info.resourceUsage
check(all(k in ru for k in ("cpu", "mem", "wallclock")), "rusage has cpu, mem, wallclock: %s" % sorted(ru))
check(ru["node"] == "2", "ran on node 2")
check(int(float(ru["mem"])) > 0, "peak memory %s KiB" % ru["mem"])
out = open(os.path.join(D, "single.out")).read()
check("out on" in out and "node2" in out and "forty-two" in out and "err" in out, "joined output: %r" % out)
expect(drmaa.errors.InvalidJobException, "wait on a reaped job", s.wait, jid, 0)

# CPU usage is measured.
jt2 = s.createJobTemplate()
jt2.remoteCommand = "/bin/sh"
jt2.args = ["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"]
jt2.nativeSpecification = "--auto"
info = s.wait(s.runJob(jt2), 60)
check(float(info.resourceUsage["cpu"]) > 0.05, "busy job used cpu %s s" % info.resourceUsage["cpu"])

# Bulk jobs with $drmaa_incr_ph$, placed by --auto.
jt3 = s.createJobTemplate()
jt3.remoteCommand = "/bin/sh"
jt3.args = ["-c", "hostname; cat"]
jt3.workingDirectory = D
jt3.inputPath = ":" + os.path.join(D, "in.$drmaa_incr_ph$")
jt3.outputPath = ":" + os.path.join(D, "bulk.$drmaa_incr_ph$.out")
jt3.nativeSpecification = "--auto"
for i in range(1, 7):
    with open(os.path.join(D, "in.%d" % i), "w") as f:
        f.write("input %d\n" % i)
ids = s.runBulkJobs(jt3, 1, 6, 1)
check(len(ids) == 6, "6 bulk job ids")
s.synchronize(ids, 60, False)
for i, j in enumerate(ids, 1):
    info = s.wait(j, 0)
    check(info.exitStatus == 0, "bulk task %d exit 0" % i)
    text = open(os.path.join(D, "bulk.%d.out" % i)).read()
    check(("input %d\n" % i) in text, "bulk task %d read its input and wrote its output" % i)
ids = s.runBulkJobs(jt3, 2, 6, 2)
check(len(ids) == 3, "bulk 2..6 step 2: 3 tasks")
s.synchronize([drmaa.Session.JOB_IDS_SESSION_ALL], 60, True)
expect(drmaa.errors.InvalidJobException, "wait after synchronize(dispose)", s.wait, ids[0], 0)

# Suspend, resume, terminate a running job on node 3.
jt4 = s.createJobTemplate()
# (a shell with a child: suspend stops the whole job, the child too)
jt4.remoteCommand = "/bin/sh"
jt4.args = ["-c", "sleep 31 & wait"]
jt4.nativeSpecification = "-n 3"
jid = s.runJob(jt4)
check(wait_state(s, jid, [JobState.RUNNING]) == JobState.RUNNING, "sleeper running")
krg_id = None
for j in json.loads(subprocess.check_output([KRG, "jobs", "--json", "--session", contact]))["jobs"]:
    if j["id"] == jid:
        krg_id = j["krg_id"]
check(krg_id is not None and krg_id >> 22 == 3, "krg jobs shows it with krg id %s on node 3" % krg_id)
check(krg_state(krg_id) in ("S", "R"), "krg ps shows the job (state %s)" % krg_state(krg_id))
expect(drmaa.errors.ResumeInconsistentStateException, "resume a running job", s.control, jid,
       JobControlAction.RESUME)
expect(drmaa.errors.ExitTimeoutException, "wait with a 1 s timeout", s.wait, jid, 1)
s.control(jid, JobControlAction.SUSPEND)
check(s.jobStatus(jid) == JobState.USER_SUSPENDED, "suspended")
end = time.time() + 5
while krg_state(krg_id) != "T" and time.time() < end:
    time.sleep(0.1)
check(krg_state(krg_id) == "T", "krg ps shows it stopped (T)")
check(child_state("sleep 31") == "T", "and its child stopped too (T)")
s.control(jid, JobControlAction.RESUME)
check(s.jobStatus(jid) == JobState.RUNNING, "resumed")
end = time.time() + 5
while krg_state(krg_id) == "T" and time.time() < end:
    time.sleep(0.1)
check(krg_state(krg_id) in ("S", "R"), "krg ps shows it running again")
check(child_state("sleep 31") in ("S", "R"), "and its child too")
s.control(jid, JobControlAction.TERMINATE)
info = s.wait(jid, 30)
check(info.hasSignal and info.terminatedSignal == "SIGKILL", "terminated: %s" % info.terminatedSignal)

# A job is a krg process like any other: checkpointed, migrated.
jt7 = s.createJobTemplate()
jt7.remoteCommand = "/usr/bin/python3"
jt7.args = ["-c", "import time, itertools\nfor i in itertools.count(): print(i, flush=True); time.sleep(0.05)"]
jt7.outputPath = ":" + os.path.join(D, "count.out")
jt7.nativeSpecification = "-n 2"
jid = s.runJob(jt7)
check(wait_state(s, jid, [JobState.RUNNING]) == JobState.RUNNING, "counter running")
krg_id = [j for j in json.loads(subprocess.check_output([KRG, "jobs", "--json", "--session", contact]))["jobs"]
          if j["id"] == jid][0]["krg_id"]
r = subprocess.run([KRG, "checkpoint", str(krg_id), "--ignore-unsupported"], capture_output=True, text=True)
check(r.returncode == 0, "krg checkpoint of the job: %s" % (r.stdout.strip() or r.stderr.strip()))
r = subprocess.run([KRG, "migrate", str(krg_id), "3"], capture_output=True, text=True)
check(r.returncode == 0, "krg migrate of the job to node 3 %s" % r.stderr.strip())
on3 = [p for p in json.loads(subprocess.check_output([KRG, "ps", "--json"]))["processes"]
       if p["id"] == krg_id and p["node"] == 3]
check(len(on3) == 1, "krg ps shows it running on node 3")
n0 = len(open(os.path.join(D, "count.out")).read().split())
time.sleep(0.5)
n1 = len(open(os.path.join(D, "count.out")).read().split())
check(n1 > n0 and s.jobStatus(jid) == JobState.RUNNING, "its output goes on after migration (%d -> %d lines)" % (n0, n1))
s.control(jid, JobControlAction.TERMINATE)
info = s.wait(jid, 30)
check(info.hasSignal and info.terminatedSignal == "SIGKILL", "migrated job terminated")

# Hold and release; terminate a held job.
jt5 = s.createJobTemplate()
jt5.remoteCommand = "/bin/true"
jt5.jobSubmissionState = drmaa.JobSubmissionState.HOLD_STATE
held = s.runJob(jt5)
check(s.jobStatus(held) == JobState.USER_ON_HOLD, "submitted on hold")
time.sleep(0.5)
check(s.jobStatus(held) == JobState.USER_ON_HOLD, "still on hold")
expect(drmaa.errors.SuspendInconsistentStateException, "suspend a held job", s.control, held,
       JobControlAction.SUSPEND)
s.control(held, JobControlAction.RELEASE)
info = s.wait(held, 30)
check(info.exitStatus == 0 and not info.wasAborted, "released job ran")
held2 = s.runJob(jt5)
s.control(held2, JobControlAction.TERMINATE)
info = s.wait(held2, 30)
check(info.wasAborted, "terminated while held: aborted")
jt5.jobSubmissionState = drmaa.JobSubmissionState.ACTIVE_STATE

# Bad input: the spec's errors, never a crash.
expect(drmaa.errors.InvalidJobException, "status of an unknown job", s.jobStatus, contact + ".99999")
expect(drmaa.errors.InvalidJobException, "status of garbage", s.jobStatus, "not-a-job")
expect(drmaa.errors.InvalidAttributeValueException, "bad native specification", setattr, jt5,
       "nativeSpecification", "--frobnicate")
expect(drmaa.errors.InvalidAttributeValueException, "bad submission state", setattr, jt5,
       "jobSubmissionState", "sideways")
expect(drmaa.errors.InvalidAttributeFormatException, "bad deadline", setattr, jt5, "deadlineTime", "tomorrow")
expect(drmaa.errors.InvalidArgumentException, "unknown attribute", drmaa.helpers.c,
       drmaa.wrappers.drmaa_set_attribute, jt5, b"drmaa_colour", b"blue")
jt5.nativeSpecification = "-n 9"
expect(drmaa.errors.DeniedByDrmException, "unknown node", s.runJob, jt5)

# A job that cannot start fails, with its reason in krg jobs.
jt6 = s.createJobTemplate()
jt6.remoteCommand = "/nonexistent/cmd"
bad = s.runJob(jt6)
info = s.wait(bad, 30)
check(info.wasAborted, "command not found: aborted")
jobs = json.loads(subprocess.check_output([KRG, "jobs", "--json", "--session", contact]))["jobs"]
b = [j for j in jobs if j["id"] == bad][0]
check(b["state"] == "failed" and "not found" in b["error"], "krg jobs: failed, %s" % b["error"])
check(len(jobs) >= 14, "krg jobs lists the session's %d jobs" % len(jobs))

# A job left running across drmaa_exit, waited for from a new attachment.
jt4.remoteCommand = "/bin/sleep"
jt4.args = ["1"]
left = s.runJob(jt4)
for t in (jt, jt2, jt3, jt4, jt5, jt6, jt7):
    t.delete()
s.exit()
expect(drmaa.errors.NoActiveSessionException, "jobStatus after exit", s.jobStatus, left)
s.initialize(contact)
info = s.wait(left, 30)
check(info.exitStatus == 0, "reattached to %s and waited for a job left running" % contact)
s.exit()
with open(os.path.join(D, "session"), "w") as f:
    f.write("%s %s\n" % (contact, left))
print("PASS")
