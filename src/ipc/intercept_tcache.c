/* intercept_tcache.c — the listener's per-thread cache (intercept-int.h):
 * a pidfd and /proc/TID/syscall kept open per calling thread, and the
 * restart probes of its last parked calls. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ipc/intercept-int.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static void ent_reset(struct itcache_ent *e, pid_t tid)
{
	if (e->pidfd >= 0)
		close(e->pidfd);
	if (e->sysfd >= 0)
		close(e->sysfd);
	memset(e, 0, sizeof(*e));
	e->tid = tid;
	e->pidfd = -1;
	e->sysfd = -1;
}

void itcache_init(struct itcache *tc)
{
	memset(tc, 0, sizeof(*tc));
	for (size_t i = 0; i < ITCACHE_SIZE; i++)
		tc->e[i].pidfd = tc->e[i].sysfd = -1;
}

void itcache_clear(struct itcache *tc)
{
	for (size_t i = 0; i < ITCACHE_SIZE; i++)
		ent_reset(&tc->e[i], 0);
}

/* tid's entry, taken over from another thread if that one held it. */
static struct itcache_ent *ent_of(struct itcache *tc, pid_t tid)
{
	struct itcache_ent *e = &tc->e[(uint32_t)tid % ITCACHE_SIZE];
	if (e->tid != tid)
		ent_reset(e, tid);
	return e;
}

int itcache_creds_fast(struct itcache *tc, pid_t tid, struct icall *c)
{
	struct itcache_ent *e = ent_of(tc, tid);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (e->pidfd < 0) {
			e->pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
			if (e->pidfd < 0)
				return errno == ESRCH ? -ESRCH : -EOPNOTSUPP;
		}
		int r = icall_creds_pidfd(e->pidfd, c);
		if (r != -ESRCH || attempt)
			return r;
		/* The thread that had this tid is gone; this is a new one. */
		ent_reset(e, tid);
	}
	return -ESRCH;
}

/* sp of tid from its kept /proc/TID/syscall (reopened once if the task
 * it was opened for is gone: a new thread has its tid). */
static int ent_sp(struct itcache_ent *e, uint64_t *sp)
{
	char buf[512];
	for (int attempt = 0; attempt < 2; attempt++) {
		if (e->sysfd < 0) {
			char path[64];
			snprintf(path, sizeof(path), "/proc/%d/syscall", (int)e->tid);
			e->sysfd = open(path, O_RDONLY | O_CLOEXEC);
			if (e->sysfd < 0)
				return -ESRCH;
		}
		ssize_t n = pread(e->sysfd, buf, sizeof(buf) - 1, 0);
		if (n > 0) {
			buf[n] = 0;
			return irestart_parse_sp(buf, sp);
		}
		if (attempt)
			break;
		pid_t tid = e->tid;
		ent_reset(e, tid);
	}
	return -ESRCH;
}

static bool same_call(const struct seccomp_data *a, const struct seccomp_data *b)
{
	return a->nr == b->nr && a->arch == b->arch && a->instruction_pointer == b->instruction_pointer &&
	       !memcmp(a->args, b->args, sizeof(a->args));
}

void itcache_probe(struct itcache *tc, pid_t tid, const struct seccomp_data *d, struct irestart_probe *p)
{
	struct itcache_ent *e = ent_of(tc, tid);
	uint64_t sp;
	if (ent_sp(e, &sp) < 0) {
		memset(p, 0, sizeof(*p));
		return;
	}
	for (unsigned i = 0; i < ITCACHE_PROBES; i++) {
		const struct itcache_probe *s = &e->p[i];
		if (s->probed && s->sp == sp && same_call(&s->key, d)) {
			*p = s->probe;
			tc->hits++;
			return;
		}
	}
	irestart_probe_at(tid, d, sp, p);
	tc->misses++;
	struct itcache_probe *s = &e->p[e->next++ % ITCACHE_PROBES];
	s->probed = p->valid;
	s->sp = sp;
	s->key = *d;
	s->probe = *p;
}

/* Every slot: the interrupted call may have left a frame that another of
 * the thread's kept calls would now find below its stack pointer. */
void itcache_forget(struct itcache *tc, pid_t tid)
{
	struct itcache_ent *e = &tc->e[(uint32_t)tid % ITCACHE_SIZE];
	if (e->tid == tid)
		for (unsigned i = 0; i < ITCACHE_PROBES; i++)
			e->p[i].probed = false;
}
