/* diff_engine — the IPC engine against this machine's kernel, call by
 * call: a seeded random sequence of non-blocking System V calls (every
 * command, good and bad arguments, as root and as two other users) runs
 * in a fresh IPC namespace and through the engine; return values, errno,
 * ids, and every byte of output (messages, stat structs, values) must be
 * the same. Times may differ by the second they straddle.
 *
 *   diff_engine [SEED [STEPS]]      (root: unshare(CLONE_NEWIPC), seteuid)
 *
 * Prints the first differences (at most 20) with the step and call, and
 * exits 0 only if there were none. */
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <time.h>
#include <unistd.h>
#include "ipc/ipc_engine.h"

#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

static uint64_t rng;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static struct krg_ipc_engine *eng;
static int diffs, step;
static char what[256];

#define DIFF(...)                                                    \
	do {                                                         \
		if (++diffs <= 20) {                                 \
			printf("step %d %s: ", step, what);          \
			printf(__VA_ARGS__);                         \
			printf("\n");                                \
		}                                                    \
	} while (0)

/* ---- the caller, the same for the kernel and the engine ---------------- */

static uint32_t root_caps;
static gid_t groups[64];
static uint32_t ngroups;
static struct krg_ipc_caller me;

static uint32_t read_caps(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long eff = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	if (f)
		fclose(f);
	uint32_t c = 0;
	if (eff & (1ull << 15))
		c |= KRG_IPC_CAP_IPC_OWNER;
	if (eff & (1ull << 21))
		c |= KRG_IPC_CAP_SYS_ADMIN;
	if (eff & (1ull << 24))
		c |= KRG_IPC_CAP_SYS_RESOURCE;
	return c;
}

/* Becomes uid (0, 1000 or 65534) for both sides. */
static void become(uid_t uid)
{
	if (seteuid(0) < 0 || setegid(uid ? uid : 0) < 0 || seteuid(uid) < 0) {
		printf("diff_engine: seteuid %u: %s\n", uid, strerror(errno));
		exit(1);
	}
	me.cred.uid = 0;
	me.cred.gid = 0;
	me.cred.euid = uid;
	me.cred.egid = me.cred.fsgid = uid;
	me.cred.caps = uid ? 0 : root_caps;
	me.cred.groups = (const uint32_t *)groups;
	me.cred.ngroups = ngroups;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct krg_ipc_reply rep;

static long ecall(const struct krg_ipc_req *q)
{
	krg_ipc_reply_release(&rep);
	int rc = krg_ipc_engine_call(eng, &me, q, 1, now_ns(), &rep);
	if (rc != KRG_IPC_DONE) {
		DIFF("engine parked a non-blocking call (%d)", rc);
		krg_ipc_engine_cancel(eng, 1);
		return -9999;
	}
	return (long)rep.ret;
}

/* Kernel result r (errno e) vs the engine's er. */
static long n_ok, n_err;

static int same_ret(long r, int e, long er)
{
	long kr = r < 0 ? -e : r;
	if (kr >= 0)
		n_ok++;
	else
		n_err++;
	if (kr != er) {
		DIFF("kernel %ld (%s), engine %ld (%s)", kr, kr < 0 ? strerror(e) : "ok", er,
			er < 0 ? strerror((int)-er) : "ok");
		return 0;
	}
	return 1;
}

static int near(long a, long b)
{
	return a == b || a + 1 == b || a == b + 1;
}

static void cmp_perm(const struct ipc_perm *k, const struct krg_ipc_perm *e)
{
	if ((int32_t)k->__key != e->key || k->uid != e->uid || k->gid != e->gid || k->cuid != e->cuid ||
	    k->cgid != e->cgid || k->mode != e->mode || k->__seq != (unsigned short)e->seq)
		DIFF("perm: kernel key %x uid %u gid %u cuid %u cgid %u mode %o seq %u; engine %x %u %u %u %u %o %u",
			(unsigned)k->__key, k->uid, k->gid, k->cuid, k->cgid, k->mode, k->__seq,
			(unsigned)e->key, e->uid, e->gid, e->cuid, e->cgid, e->mode, e->seq);
}

/* ---- ids and keys ---------------------------------------------------------- */

static int msq_ids[64], nmsq, sem_ids[64], nsem;

static void remember(int *ids, int *n, int id)
{
	for (int i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < 64)
		ids[(*n)++] = id;
}

static int pick_id(const int *ids, int n)
{
	unsigned k = rnd(20);
	if (k == 0)
		return -1;
	if (k == 1)
		return 12345;
	if (!n || k == 2)
		return (int)rnd(70);
	return ids[rnd((unsigned)n)];
}

static key_t pick_key(void)
{
	return rnd(6) == 0 ? IPC_PRIVATE : (key_t)(0x100 + rnd(4));
}

static int pick_flags_get(void)
{
	static const int modes[] = { 0600, 0644, 0666, 0666, 0, 0640, 0606, 0622 };
	static const int cr[] = { 0, IPC_CREAT, IPC_CREAT | IPC_EXCL, IPC_CREAT };
	return cr[rnd(4)] | modes[rnd(8)];
}

/* ---- message queues ------------------------------------------------------- */

static struct {
	long mtype;
	char mtext[9000];
} kbuf;

static void do_msgget(void)
{
	key_t key = pick_key();
	int flg = pick_flags_get();
	snprintf(what, sizeof what, "msgget(%#x, %#o) uid %u", (unsigned)key, flg, me.cred.euid);
	errno = 0;
	int r = msgget(key, flg);
	int e = errno;
	struct krg_ipc_req q = { .op = KRG_IPC_OP_MSGGET, .id = KRG_IPC_ID_ANY, .key = key, .flags = flg };
	if (same_ret(r, e, ecall(&q)) && r >= 0)
		remember(msq_ids, &nmsq, r);
}

static void do_msgsnd(void)
{
	int id = pick_id(msq_ids, nmsq);
	long type = (long)rnd(6) - 1;
	size_t sz = rnd(20) == 0 ? 8193 : rnd(20) == 0 ? 101 : rnd(70);
	int flg = IPC_NOWAIT;
	snprintf(what, sizeof what, "msgsnd(%d, type %ld, %zu) uid %u", id, type, sz, me.cred.euid);
	kbuf.mtype = type;
	for (size_t i = 0; i < sz && i < sizeof kbuf.mtext; i++)
		kbuf.mtext[i] = (char)rnd(256);
	errno = 0;
	int r = msgsnd(id, &kbuf, sz, flg);
	int e = errno;
	struct krg_ipc_req q = { .op = KRG_IPC_OP_MSGSND, .id = id, .msgtyp = type, .msgsz = sz,
		.text = (const uint8_t *)kbuf.mtext, .text_len = sz > 8192 ? 0 : sz, .flags = flg };
	same_ret(r, e, ecall(&q));
}

static void do_msgrcv(void)
{
	static const int flags[] = { 0, MSG_EXCEPT, MSG_NOERROR, MSG_COPY, MSG_COPY | MSG_NOERROR,
		MSG_EXCEPT | MSG_NOERROR, MSG_COPY | MSG_EXCEPT };
	int id = pick_id(msq_ids, nmsq);
	long type = (long)rnd(11) - 5;
	size_t sz = rnd(130);
	int flg = flags[rnd(7)] | (rnd(8) ? IPC_NOWAIT : 0);
	if (!(flg & IPC_NOWAIT) && !(flg & MSG_COPY))
		flg |= IPC_NOWAIT;      /* never block: the kernel would wait */
	snprintf(what, sizeof what, "msgrcv(%d, %zu, type %ld, %#o) uid %u", id, sz, type, flg, me.cred.euid);
	memset(&kbuf, 0, sizeof kbuf);
	errno = 0;
	ssize_t r = msgrcv(id, &kbuf, sz, type, flg);
	int e = errno;
	struct krg_ipc_req q = { .op = KRG_IPC_OP_MSGRCV, .id = id, .msgtyp = type, .msgsz = sz, .flags = flg };
	if (!same_ret(r, e, ecall(&q)) || r < 0)
		return;
	if (rep.mtype != kbuf.mtype || rep.text_len < (uint64_t)r || memcmp(rep.text, kbuf.mtext, (size_t)r))
		DIFF("message: kernel type %ld, engine type %ld / contents differ", kbuf.mtype, (long)rep.mtype);
}

static void cmp_msqid(const struct msqid_ds *k)
{
	if (rep.out != KRG_IPC_OUT_MSQ_STAT) {
		DIFF("engine gave no msqid_ds");
		return;
	}
	const struct krg_ipc_msq_stat *s = &rep.msq;
	cmp_perm(&k->msg_perm, &s->perm);
	if (k->__msg_cbytes != s->cbytes || k->msg_qnum != s->qnum || k->msg_qbytes != s->qbytes ||
	    k->msg_lspid != s->lspid || k->msg_lrpid != s->lrpid || !near(k->msg_stime, s->stime) ||
	    !near(k->msg_rtime, s->rtime) || !near(k->msg_ctime, s->ctime))
		DIFF("msqid_ds: kernel cbytes %lu qnum %lu qbytes %lu lspid %d lrpid %d times %ld %ld %ld; "
		     "engine %lu %lu %lu %d %d %ld %ld %ld",
			(unsigned long)k->__msg_cbytes, (unsigned long)k->msg_qnum, (unsigned long)k->msg_qbytes,
			k->msg_lspid, k->msg_lrpid, (long)k->msg_stime, (long)k->msg_rtime, (long)k->msg_ctime,
			(unsigned long)s->cbytes, (unsigned long)s->qnum, (unsigned long)s->qbytes, s->lspid, s->lrpid,
			(long)s->stime, (long)s->rtime, (long)s->ctime);
}

static void do_msgctl(void)
{
	static const int cmds[] = { IPC_STAT, IPC_STAT, IPC_SET, IPC_RMID, MSG_STAT, MSG_STAT_ANY, IPC_INFO, MSG_INFO, 77 };
	int cmd = cmds[rnd(9)];
	int id = (cmd == MSG_STAT || cmd == MSG_STAT_ANY) ? (int)rnd(8) : pick_id(msq_ids, nmsq);
	if (cmd == IPC_RMID && rnd(3))
		cmd = IPC_STAT;          /* keep objects around longer */
	snprintf(what, sizeof what, "msgctl(%d, %d) uid %u", id, cmd, me.cred.euid);
	struct msqid_ds ds;
	memset(&ds, 0, sizeof ds);
	struct krg_ipc_req q = { .op = KRG_IPC_OP_MSGCTL, .id = id, .cmd = cmd };
	if (cmd == IPC_SET) {
		static const uid_t ids[] = { 0, 1000, 65534, (uid_t)-1 };
		ds.msg_perm.uid = ids[rnd(rnd(10) ? 3 : 4)];
		ds.msg_perm.gid = ids[rnd(3)];
		ds.msg_perm.mode = (unsigned short)(rnd(01000) | (rnd(4) ? 0 : 01000));
		ds.msg_qbytes = rnd(5) ? 50 + rnd(400) : 20000 + rnd(10);
		q.set = (struct krg_ipc_setbuf){ ds.msg_perm.uid, ds.msg_perm.gid, ds.msg_perm.mode, ds.msg_qbytes };
	}
	errno = 0;
	int r = msgctl(id, cmd, &ds);
	int e = errno;
	if (!same_ret(r, e, ecall(&q)) || r < 0)
		return;
	if (cmd == IPC_STAT || cmd == MSG_STAT || cmd == MSG_STAT_ANY)
		cmp_msqid(&ds);
	if (cmd == IPC_INFO || cmd == MSG_INFO) {
		struct msginfo *mi = (struct msginfo *)&ds;
		const struct krg_ipc_msginfo *m = &rep.msginfo;
		if (mi->msgpool != m->msgpool || mi->msgmap != m->msgmap || mi->msgmax != m->msgmax ||
		    mi->msgmnb != m->msgmnb || mi->msgmni != m->msgmni || mi->msgssz != m->msgssz ||
		    mi->msgtql != m->msgtql || mi->msgseg != m->msgseg)
			DIFF("msginfo: kernel %d %d %d %d %d %d %d %u; engine %d %d %d %d %d %d %d %u",
				mi->msgpool, mi->msgmap, mi->msgmax, mi->msgmnb, mi->msgmni, mi->msgssz, mi->msgtql,
				mi->msgseg, m->msgpool, m->msgmap, m->msgmax, m->msgmnb, m->msgmni, m->msgssz,
				m->msgtql, m->msgseg);
	}
}

/* ---- semaphores ------------------------------------------------------------------ */

static void do_semget(void)
{
	key_t key = pick_key();
	int nsems = rnd(8) ? 1 + (int)rnd(4) : (int)rnd(7) - 1;
	int flg = pick_flags_get();
	snprintf(what, sizeof what, "semget(%#x, %d, %#o) uid %u", (unsigned)key, nsems, flg, me.cred.euid);
	errno = 0;
	int r = semget(key, nsems, flg);
	int e = errno;
	struct krg_ipc_req q = { .op = KRG_IPC_OP_SEMGET, .id = KRG_IPC_ID_ANY, .key = key, .nsems = nsems, .flags = flg };
	if (same_ret(r, e, ecall(&q)) && r >= 0)
		remember(sem_ids, &nsem, r);
}

static void do_semop(void)
{
	int id = pick_id(sem_ids, nsem);
	unsigned n = 1 + rnd(3);
	struct sembuf s[3];
	struct krg_ipc_sembuf es[3];
	int len = snprintf(what, sizeof what, "semop(%d,", id);
	for (unsigned i = 0; i < n; i++) {
		s[i].sem_num = (unsigned short)(rnd(10) ? rnd(3) : rnd(6));
		s[i].sem_op = (short)(rnd(12) == 0 ? 32000 : (int)rnd(7) - 3);
		s[i].sem_flg = (short)(IPC_NOWAIT | (rnd(3) ? 0 : SEM_UNDO));
		if (rnd(8) == 0 && i > 0)
			s[i].sem_flg &= (short)~IPC_NOWAIT;   /* only the blocking op's flag counts */
		es[i] = (struct krg_ipc_sembuf){ s[i].sem_num, s[i].sem_op, s[i].sem_flg };
		len += snprintf(what + len, sizeof what - (size_t)len, " {%u %d %#o}", s[i].sem_num, s[i].sem_op, s[i].sem_flg);
	}
	snprintf(what + len, sizeof what - (size_t)len, ") uid %u", me.cred.euid);
	/* a sop without IPC_NOWAIT that would block: a zero timeout keeps the
	 * kernel from sleeping (EAGAIN) and the engine does the same */
	struct timespec zero = { 0, 0 };
	errno = 0;
	int r = semtimedop(id, s, n, &zero);
	int e = errno;
	struct krg_ipc_req q = { .op = KRG_IPC_OP_SEMOP, .id = id, .sops = es, .nsops = n, .has_timeout = 1 };
	same_ret(r, e, ecall(&q));
}

static void do_semctl(void)
{
	static const int cmds[] = { GETVAL, SETVAL, GETALL, SETALL, GETPID, GETNCNT, GETZCNT, IPC_STAT, IPC_SET,
		IPC_RMID, SEM_STAT, SEM_STAT_ANY, IPC_INFO, SEM_INFO, 66 };
	int cmd = cmds[rnd(15)];
	int id = (cmd == SEM_STAT || cmd == SEM_STAT_ANY) ? (int)rnd(8) : pick_id(sem_ids, nsem);
	if (cmd == IPC_RMID && rnd(3))
		cmd = GETALL;
	int semnum = (int)rnd(7) - 1;
	snprintf(what, sizeof what, "semctl(%d, %d, %d) uid %u", id, semnum, cmd, me.cred.euid);
	struct krg_ipc_req q = { .op = KRG_IPC_OP_SEMCTL, .id = id, .semnum = semnum, .cmd = cmd };
	union semun u;
	struct semid_ds ds;
	struct seminfo si;
	unsigned short vals[64];
	memset(&ds, 0, sizeof ds);
	memset(vals, 0, sizeof vals);
	switch (cmd) {
	case SETVAL:
		u.val = rnd(10) == 0 ? 40000 : (int)rnd(6) - (rnd(10) == 0);
		q.val = u.val;
		break;
	case GETALL:
	case SETALL:
		for (int i = 0; i < 64; i++)
			vals[i] = (unsigned short)(rnd(15) == 0 ? 33000 : rnd(5));
		u.array = vals;
		q.vals = vals;
		q.nvals = 64;
		break;
	case IPC_SET: {
		static const uid_t ids[] = { 0, 1000, 65534, (uid_t)-1 };
		ds.sem_perm.uid = ids[rnd(rnd(10) ? 3 : 4)];
		ds.sem_perm.gid = ids[rnd(3)];
		ds.sem_perm.mode = (unsigned short)rnd(02000);
		q.set = (struct krg_ipc_setbuf){ ds.sem_perm.uid, ds.sem_perm.gid, ds.sem_perm.mode, 0 };
		u.buf = &ds;
		break;
	}
	case IPC_INFO:
	case SEM_INFO:
		u.__buf = &si;
		break;
	default:
		u.buf = &ds;
	}
	errno = 0;
	int r = semctl(id, semnum, cmd, u);
	int e = errno;
	if (!same_ret(r, e, ecall(&q)) || r < 0)
		return;
	if (cmd == GETALL && (rep.nvals > 64 || memcmp(vals, rep.vals, rep.nvals * sizeof vals[0])))
		DIFF("GETALL values differ");
	if (cmd == IPC_STAT || cmd == SEM_STAT || cmd == SEM_STAT_ANY) {
		cmp_perm(&ds.sem_perm, &rep.sem.perm);
		if (ds.sem_nsems != rep.sem.nsems || !near(ds.sem_otime, rep.sem.otime) || !near(ds.sem_ctime, rep.sem.ctime))
			DIFF("semid_ds: kernel nsems %lu otime %ld ctime %ld; engine %lu %ld %ld", (unsigned long)ds.sem_nsems,
				(long)ds.sem_otime, (long)ds.sem_ctime, (unsigned long)rep.sem.nsems, (long)rep.sem.otime,
				(long)rep.sem.ctime);
	}
	if (cmd == IPC_INFO || cmd == SEM_INFO) {
		const struct krg_ipc_seminfo *m = &rep.seminfo;
		if (si.semmap != m->semmap || si.semmni != m->semmni || si.semmns != m->semmns || si.semmnu != m->semmnu ||
		    si.semmsl != m->semmsl || si.semopm != m->semopm || si.semume != m->semume || si.semusz != m->semusz ||
		    si.semvmx != m->semvmx || si.semaem != m->semaem)
			DIFF("seminfo differs (kernel semusz %d semaem %d, engine %d %d)", si.semusz, si.semaem, m->semusz, m->semaem);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	unsigned long seed = argc > 1 ? strtoul(argv[1], NULL, 0) : 1;
	long steps = argc > 2 ? strtol(argv[2], NULL, 0) : 20000;
	if (steps <= 0 || !seed) {
		printf("usage: diff_engine [SEED (not 0) [STEPS]]\n");
		return 2;
	}
	if (geteuid() != 0 || unshare(CLONE_NEWIPC) < 0) {
		printf("diff_engine: needs root for a fresh IPC namespace (%s)\n", strerror(errno));
		return 1;
	}
	/* small limits in the namespace, the same in the engine */
	FILE *f;
	const char *set[][2] = { { "/proc/sys/kernel/msgmni", "12" }, { "/proc/sys/kernel/msgmnb", "600" },
		{ "/proc/sys/kernel/msgmax", "100" }, { "/proc/sys/kernel/sem", "5 30 3 8" } };
	for (size_t i = 0; i < 4; i++) {
		if (!(f = fopen(set[i][0], "w")) || fputs(set[i][1], f) < 0 || fclose(f) != 0) {
			printf("diff_engine: cannot set %s\n", set[i][0]);
			return 1;
		}
	}
	struct krg_ipc_limits lim;
	krg_ipc_limits_default(&lim);
	if (krg_ipc_limits_read(&lim, "/proc/sys/kernel") < 0) {
		printf("diff_engine: cannot read the limits\n");
		return 1;
	}
	eng = krg_ipc_engine_new(&lim, NULL, NULL);
	root_caps = read_caps();
	int ng = getgroups(64, groups);
	ngroups = ng > 0 ? (uint32_t)ng : 0;
	me.pid = getpid();
	me.proc_id = (uint64_t)getpid();
	rng = seed * 0x9e3779b97f4a7c15ull | 1;
	static const uid_t users[] = { 0, 0, 0, 1000, 65534 };
	for (step = 0; step < steps; step++) {
		if (step % 7 == 0)
			become(users[rnd(5)]);
		switch (rnd(8)) {
		case 0: do_msgget(); break;
		case 1: do_msgsnd(); break;
		case 2: do_msgrcv(); break;
		case 3: do_msgctl(); break;
		case 4: do_semget(); break;
		case 5: do_semop(); break;
		case 6: do_semop(); break;
		case 7: do_semctl(); break;
		}
	}
	krg_ipc_reply_release(&rep);
	krg_ipc_engine_free(eng);
	printf("diff_engine: seed %lu, %ld calls (%ld succeeded, %ld failed alike or not), %d differences\n",
		seed, steps, n_ok, n_err, diffs);
	if (n_ok < steps / 8) {
		printf("diff_engine: too few calls succeeded to compare much\n");
		return 1;
	}
	return diffs ? 1 : 0;
}
