/* intercept_call.c — a notification decoded into a call: which of the
 * caller's bytes the call reads (msgsnd's message, semop's operations,
 * IPC_SET's struct, SETALL's values) and where its answer goes (msgrcv's
 * buffer, *_STAT and *_INFO structs, GETALL's values); the caller's
 * credentials. Layouts are x86_64's (ipc_abi.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "ipc/intercept-int.h"
#include "ipc/ipc_abi.h"
#include "lib/fileio.h"
#include "lib/macro.h"

/* glibc's structs are the kernel's 64-bit layouts on x86_64. */
_Static_assert(sizeof(struct msqid_ds) == KRG_IPC_ABI_MSQID_DS_SIZE, "msqid64_ds");
_Static_assert(sizeof(struct semid_ds) == KRG_IPC_ABI_SEMID_DS_SIZE, "semid64_ds");
_Static_assert(sizeof(struct sembuf) == KRG_IPC_ABI_SEMBUF_SIZE, "sembuf");

#define C_IPC_SET 1
#define C_GETALL 13
#define C_SETALL 17
#define C_SEM_UNDO 0x1000
#define C_SHMLBA 4096

int icall_read(pid_t pid, uint64_t addr, void *buf, size_t len, size_t *got)
{
	size_t done = 0;
	while (done < len) {
		struct iovec l = { (uint8_t *)buf + done, len - done }, r = { (void *)(uintptr_t)(addr + done), len - done };
		ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
		if (n <= 0) {
			if (got)
				*got = done;
			return n < 0 && errno == ESRCH ? -ESRCH : -EFAULT;
		}
		done += (size_t)n;
	}
	if (got)
		*got = done;
	return 0;
}

int icall_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		struct iovec l = { (uint8_t *)buf + done, len - done }, r = { (void *)(uintptr_t)(addr + done), len - done };
		ssize_t n = process_vm_writev(pid, &l, 1, &r, 1, 0);
		if (n <= 0)
			return n < 0 && errno == ESRCH ? -ESRCH : -EFAULT;
		done += (size_t)n;
	}
	return 0;
}

#define C_SETVAL 16

/* A fresh copy of len bytes of the caller's at addr: 0, -EFAULT, -ESRCH,
 * -ENOMEM. *got: bytes that could be read (partial_ok keeps those). */
static int take(pid_t pid, uint64_t addr, size_t len, void **out, size_t *got)
{
	*out = malloc(len ? len : 1);
	if (!*out)
		return -ENOMEM;
	int r = icall_read(pid, addr, *out, len, got);
	return r;
}

static int decode_msgsnd(pid_t pid, const struct krg_ipc_limits *lim, struct icall *c)
{
	struct krg_ipc_req *q = &c->req;
	long sz = (long)c->req.msgsz;
	/* Linux: sizes and the id first, then the mtype is read, checked,
	 * then the text. */
	if (sz < 0 || (uint64_t)sz > lim->msgmax || (uint64_t)sz > KRG_INTERCEPT_MAX_MSG || q->id < 0)
		return -EINVAL;
	void *buf;
	size_t got = 0;
	int r = take(pid, c->out_addr, KRG_IPC_ABI_MTYPE_SIZE + (size_t)sz, &buf, &got);
	c->text = buf;
	if (r == -ENOMEM || r == -ESRCH)
		return r;
	if (got < KRG_IPC_ABI_MTYPE_SIZE)
		return -EFAULT;
	q->msgtyp = krg_ipc_abi_mtype_get(buf);
	if (q->msgtyp < 1)
		return -EINVAL;
	if (r < 0)
		return -EFAULT;
	q->text = c->text + KRG_IPC_ABI_MTYPE_SIZE;
	q->text_len = (uint64_t)sz;
	return 0;
}

static int decode_semop(pid_t pid, const struct krg_ipc_limits *lim, struct icall *c, uint64_t sops_addr, uint64_t ts_addr)
{
	struct krg_ipc_req *q = &c->req;
	if (ts_addr) {
		struct timespec ts;
		int r = icall_read(pid, ts_addr, &ts, sizeof(ts), NULL);
		if (r < 0)
			return r;
		q->has_timeout = 1;
		q->timeout_sec = ts.tv_sec;
		q->timeout_nsec = ts.tv_nsec;
	}
	if (q->nsops < 1 || q->id < 0)
		return -EINVAL;
	if (q->nsops > lim->semopm || q->nsops > KRG_INTERCEPT_MAX_SOPS)
		return -E2BIG;
	size_t len = (size_t)q->nsops * KRG_IPC_ABI_SEMBUF_SIZE;
	void *raw;
	int r = take(pid, sops_addr, len, &raw, NULL);
	if (r < 0) {
		free(raw);
		return r;
	}
	c->sops = calloc(q->nsops, sizeof(*c->sops));
	if (!c->sops) {
		free(raw);
		return -ENOMEM;
	}
	krg_ipc_abi_sembufs(raw, q->nsops, c->sops);
	free(raw);
	q->sops = c->sops;
	for (uint32_t i = 0; i < q->nsops; i++)
		if (c->sops[i].flg & C_SEM_UNDO)
			c->sem_undo = true;
	return 0;
}

_Static_assert(KRG_IPC_ABI_SHMID_DS_SIZE <= KRG_IPC_ABI_MSQID_DS_SIZE, "IPC_SET buffer");

static int decode_ctl(pid_t pid, struct icall *c, int kind)
{
	struct krg_ipc_req *q = &c->req;
	bool sem = kind == KRG_IPC_SEM;
	if (q->cmd == C_IPC_SET) {
		if (q->id < 0 || q->cmd < 0)
			return -EINVAL;
		size_t len = sem ? KRG_IPC_ABI_SEMID_DS_SIZE
				 : kind == KRG_IPC_SHM ? KRG_IPC_ABI_SHMID_DS_SIZE : KRG_IPC_ABI_MSQID_DS_SIZE;
		uint8_t buf[KRG_IPC_ABI_MSQID_DS_SIZE];
		int r = icall_read(pid, c->out_addr, buf, len, NULL);
		if (r < 0)
			return r;
		if (sem)
			krg_ipc_abi_sem_setbuf(buf, &q->set);
		else if (kind == KRG_IPC_SHM)
			krg_ipc_abi_shm_setbuf(buf, &q->set);
		else
			krg_ipc_abi_msq_setbuf(buf, &q->set);
	} else if (sem && q->cmd == C_SETALL) {
		/* The set's nsems is the backend's to know: read what is there
		 * up to the most a set may hold; fewer values than nsems means
		 * the caller's array runs into unmapped memory (EFAULT). */
		void *buf;
		size_t got = 0;
		size_t cap = 2 * (size_t)KRG_INTERCEPT_MAX_SEMS;
		int r = take(pid, c->out_addr, cap, &buf, &got);
		if (r == -ENOMEM || r == -ESRCH) {
			free(buf);
			return r;
		}
		c->vals = buf;
		q->vals = c->vals;
		q->nvals = (uint32_t)(got / 2);
	}
	return 0;
}

int icall_decode(const struct seccomp_notif *n, const struct krg_ipc_limits *lim, struct icall *c)
{
	memset(c, 0, sizeof(*c));
	struct krg_ipc_req *q = &c->req;
	const __u64 *a = n->data.args;
	pid_t pid = (pid_t)n->pid;
	c->nr = n->data.nr;
	switch (c->nr) {
	case SYS_msgget:
		q->op = KRG_IPC_OP_MSGGET;
		q->id = KRG_IPC_ID_ANY;
		q->key = (int32_t)a[0];
		q->flags = (int32_t)a[1];
		return 0;
	case SYS_semget:
		q->op = KRG_IPC_OP_SEMGET;
		q->id = KRG_IPC_ID_ANY;
		q->key = (int32_t)a[0];
		q->nsems = (int32_t)a[1];
		q->flags = (int32_t)a[2];
		return 0;
	case SYS_msgsnd:
		q->op = KRG_IPC_OP_MSGSND;
		q->id = (int32_t)a[0];
		c->out_addr = a[1];
		q->msgsz = a[2];
		q->flags = (int32_t)a[3];
		return decode_msgsnd(pid, lim, c);
	case SYS_msgrcv:
		q->op = KRG_IPC_OP_MSGRCV;
		q->id = (int32_t)a[0];
		c->out_addr = a[1];
		q->msgsz = a[2];
		q->msgtyp = (int64_t)a[3];
		q->flags = (int32_t)a[4];
		if (q->id < 0 || (long)q->msgsz < 0)
			return -EINVAL;
		return 0;
	case SYS_msgctl:
		q->op = KRG_IPC_OP_MSGCTL;
		q->id = (int32_t)a[0];
		q->cmd = (int32_t)a[1];
		c->out_addr = a[2];
		return decode_ctl(pid, c, KRG_IPC_MSG);
	case SYS_semctl:
		q->op = KRG_IPC_OP_SEMCTL;
		q->id = (int32_t)a[0];
		q->semnum = (int32_t)a[1];
		q->cmd = (int32_t)a[2];
		c->out_addr = a[3];  /* union semun by value: a pointer, or SETVAL's int */
		if (q->cmd == C_SETVAL)
			q->val = (int32_t)a[3];
		return decode_ctl(pid, c, KRG_IPC_SEM);
	case SYS_semop:
	case SYS_semtimedop:
		q->op = KRG_IPC_OP_SEMOP;
		q->id = (int32_t)a[0];
		q->nsops = a[2] > UINT32_MAX ? UINT32_MAX : (uint32_t)a[2];
		return decode_semop(pid, lim, c, a[1], c->nr == SYS_semtimedop ? a[3] : 0);
	case SYS_shmget:
		q->op = KRG_IPC_OP_SHMGET;
		q->id = KRG_IPC_ID_ANY;
		q->key = (int32_t)a[0];
		q->size = a[1];
		q->flags = (int32_t)a[2];
		return 0;
	case SYS_shmctl:
		q->op = KRG_IPC_OP_SHMCTL;
		q->id = (int32_t)a[0];
		q->cmd = (int32_t)a[1];
		c->out_addr = a[2];
		return decode_ctl(pid, c, KRG_IPC_SHM);
	case SYS_shmat:
		/* Served on this node by mapping its memfd (intercept_shm.c);
		 * the address checks are Linux do_shmat's. */
		q->op = KRG_IPC_OP_SHMAT;
		q->id = (int32_t)a[0];
		q->flags = (int32_t)a[2];
		c->out_addr = a[1];
		if (q->id < 0)
			return -EINVAL;
		if (c->out_addr & (C_SHMLBA - 1)) {
			if (!(q->flags & SHM_RND))
				return -EINVAL;
			c->out_addr &= ~(uint64_t)(C_SHMLBA - 1);
		}
		return 0;
	case SYS_shmdt:
		/* The segment: krgd's record of the attach at this address. */
		q->op = KRG_IPC_OP_SHMDT;
		q->id = -1;
		c->out_addr = a[0];
		return 0;
	}
	return -ENOSYS;
}

long icall_write_reply(pid_t tid, const struct icall *c, const struct krg_ipc_reply *r)
{
	if (r->ret < 0)
		return (long)r->ret;
	int w = 0;
	if (c->req.op == KRG_IPC_OP_MSGRCV) {
		uint64_t n = (uint64_t)r->ret;
		if (n > r->text_len)
			return -EIO;
		uint8_t mt[KRG_IPC_ABI_MTYPE_SIZE];
		krg_ipc_abi_mtype_put(r->mtype, mt);
		w = icall_write(tid, c->out_addr, mt, sizeof(mt));
		if (w == 0 && n)
			w = icall_write(tid, c->out_addr + sizeof(mt), r->text, n);
	} else if (c->req.op == KRG_IPC_OP_SEMCTL && c->req.cmd == C_GETALL) {
		if (r->nvals)
			w = icall_write(tid, c->out_addr, r->vals, (size_t)r->nvals * 2);
	} else if (c->req.op == KRG_IPC_OP_MSGCTL || c->req.op == KRG_IPC_OP_SEMCTL) {
		uint8_t buf[KRG_IPC_ABI_MSQID_DS_SIZE];
		size_t n = krg_ipc_abi_reply_out(r, buf, sizeof(buf));
		if (n)
			w = icall_write(tid, c->out_addr, buf, n);
	} else if (c->req.op == KRG_IPC_OP_SHMCTL) {
		uint8_t buf[KRG_IPC_ABI_SHMID_DS_SIZE];
		size_t n = krg_ipc_abi_shm_reply_out(r, buf, sizeof(buf));
		if (n)
			w = icall_write(tid, c->out_addr, buf, n);
	}
	return w < 0 ? -EFAULT : (long)r->ret;
}

/* "Name:\tv1\tv2..." fields of /proc/TID/status. */
static int parse_ids(const char *s, const char *name, uint32_t v[4])
{
	const char *p = strstr(s, name);
	if (!p)
		return -EIO;
	p += strlen(name);
	for (int i = 0; i < 4; i++) {
		char *end;
		unsigned long x = strtoul(p, &end, 10);
		if (end == p || x > UINT32_MAX)
			return -EIO;
		v[i] = (uint32_t)x;
		p = end;
	}
	return 0;
}

/* The last number of a "Name:\tv1\tv2..." line (NStgid: the innermost
 * pid namespace's view). */
static int last_field(const char *s, const char *name, long *out)
{
	const char *p = strstr(s, name);
	if (!p)
		return -EIO;
	p += strlen(name);
	const char *eol = strchr(p, '\n');
	bool any = false;
	for (;;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || (eol && end > eol))
			break;
		*out = v;
		any = true;
		p = end;
	}
	return any ? 0 : -EIO;
}

#define CAP_BIT(n) (1ull << (n))

int icall_creds(pid_t tid, struct icall *c)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	size_t cap = 4096 + KRG_INTERCEPT_MAX_GROUPS * 11;
	_cleanup_free_ char *s = malloc(cap);
	if (!s)
		return -ENOMEM;
	ssize_t n = krg_read_small(path, s, cap);
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	if ((size_t)n >= cap - 1)
		return -ENOMEM;  /* more groups than we take */
	struct krg_ipc_cred *w = &c->who.cred;
	uint32_t uid[4], gid[4];
	long tgid = 0;
	int r = parse_ids(s, "\nUid:", uid);
	if (r == 0)
		r = parse_ids(s, "\nGid:", gid);
	if (r == 0)
		r = last_field(s, "\nNStgid:", &tgid);
	const char *tg = strstr(s, "\nTgid:");
	if (r == 0 && !tg)
		r = -EIO;
	if (r == 0)
		c->tgid = (pid_t)strtol(tg + 6, NULL, 10);
	const char *ce = strstr(s, "\nCapEff:");
	const char *g = strstr(s, "\nGroups:");
	if (r < 0 || !ce || !g)
		return r < 0 ? r : -EIO;
	w->uid = uid[0], w->euid = uid[1];
	w->gid = gid[0], w->egid = gid[1], w->fsgid = gid[3];
	uint64_t caps = strtoull(ce + 8, NULL, 16);
	w->caps = (caps & CAP_BIT(15) ? KRG_IPC_CAP_IPC_OWNER : 0) | (caps & CAP_BIT(21) ? KRG_IPC_CAP_SYS_ADMIN : 0) |
		  (caps & CAP_BIT(24) ? KRG_IPC_CAP_SYS_RESOURCE : 0);
	c->who.pid = (int32_t)tgid;
	g += 8;
	const char *eol = strchr(g, '\n');
	c->groups = calloc(KRG_INTERCEPT_MAX_GROUPS, sizeof(uint32_t));
	if (!c->groups)
		return -ENOMEM;
	for (;;) {
		char *end;
		unsigned long x = strtoul(g, &end, 10);
		if (end == g || (eol && end > eol))
			break;
		if (w->ngroups == KRG_INTERCEPT_MAX_GROUPS)
			return -ENOMEM;
		c->groups[w->ngroups++] = (uint32_t)x;
		g = end;
	}
	w->groups = c->groups;
	return 0;
}

/* PIDFD_GET_INFO (Linux 6.13+; linux/pidfd.h of newer headers). */
struct krg_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid;
	uint32_t ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
_Static_assert(sizeof(struct krg_pidfd_info) == 64, "PIDFD_INFO_SIZE_VER0");
#define KRG_PIDFD_INFO_PID (1ull << 0)
#define KRG_PIDFD_INFO_CREDS (1ull << 1)
#define KRG_PIDFD_GET_INFO _IOWR(0xFF, 11, struct krg_pidfd_info)

int icall_creds_pidfd(int pfd, struct icall *c)
{
	struct krg_pidfd_info pi = { .mask = KRG_PIDFD_INFO_PID | KRG_PIDFD_INFO_CREDS };
	if (ioctl(pfd, KRG_PIDFD_GET_INFO, &pi) < 0)
		return errno == ESRCH ? -ESRCH : -EOPNOTSUPP;
	if ((pi.mask & (KRG_PIDFD_INFO_PID | KRG_PIDFD_INFO_CREDS)) != (KRG_PIDFD_INFO_PID | KRG_PIDFD_INFO_CREDS))
		return -EOPNOTSUPP;
	struct krg_ipc_cred *w = &c->who.cred;
	w->uid = pi.ruid, w->euid = pi.euid;
	w->gid = pi.rgid, w->egid = pi.egid, w->fsgid = pi.fsgid;
	/* No groups, no capabilities: a subset of what the caller has, so a
	 * call can only be refused more often; a refusal is asked again with
	 * the full credentials (intercept_svc.c). */
	w->caps = 0;
	w->ngroups = 0;
	w->groups = NULL;
	c->tgid = (pid_t)pi.tgid;
	c->who.pid = (int32_t)pi.tgid;
	return 0;
}

void icall_free(struct icall *c)
{
	free(c->text);
	free(c->sops);
	free(c->vals);
	free(c->groups);
	c->text = NULL;
	c->sops = NULL;
	c->vals = NULL;
	c->groups = NULL;
}
