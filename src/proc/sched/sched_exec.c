/* sched_exec.c — DISTANT_FORK placement at execve (docs/sched.md,
 * "Distant fork").
 *
 * A child is cheapest to move at its execve: the old image is about to go
 * and the new one has not built anything yet. krg's IPC filter sends every
 * execve of a krg process to krgd (ipc/intercept.h); its exec hook comes
 * here with the caller still blocked before the exec:
 *   hook   a child of a DISTANT_FORK process that least_loaded sends
 *          elsewhere, whose program exists: noted, and the listener
 *          stops it (SIGSTOP) right after letting the exec go on, so it
 *          stops before the first instruction of its new program;
 *   tick   every millisecond while some are noted: a noted child stopped
 *          with another executable than before has exec'd: migrated (the
 *          migration carries its argv, envp, fds and credentials; the
 *          original becomes its deputy here); stopped with the same one,
 *          its exec failed (a PATH search): let go, the next try is
 *          notified again;
 *   done   the migration finished. The stop was krgd's, not the
 *          process's: the migration worker (a fork of krgd) asks
 *          krg_sched_exec_held() and restores it running; if the move
 *          failed, SIGCONT to the original, which goes on here.
 * The stop is a job-control stop while it lasts (a parent waiting with
 * WUNTRACED would see it), as the migration's own freeze is. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "lib/log.h"
#include "proc/table.h"
#include "proc/procid.h"
#include "proc/sched/sched-int.h"

#define EXEC_MAX 64             /* children noted at once; more exec here */
#define EXEC_TICK_MS 1
#define EXEC_GIVE_UP_MS 2000    /* one not stopped by then is let go */

struct xpend {
	pid_t pid;
	uint64_t start;             /* its start time: the same process */
	uint32_t id, node;
	dev_t dev;                  /* its executable before the exec */
	ino_t ino;
	uint64_t ms;                /* loop time noted */
};

struct sched_exec {
	struct krg_sched *sc;       /* borrowed */
	uv_loop_t *loop;
	uint32_t self;
	uint64_t mntns;             /* krgd's mount namespace: paths checked only in it */
	uv_timer_t timer;
	struct xpend p[EXEC_MAX];
	size_t n;
	uint64_t placed, failed;
};

/* Tgid, PPid and Threads of /proc/TID/status. */
static int status_of(pid_t tid, pid_t *tgid, pid_t *ppid, int *threads)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	*tgid = *ppid = 0;
	*threads = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Tgid:", 5))
			*tgid = atoi(line + 5);
		else if (!strncmp(line, "PPid:", 5))
			*ppid = atoi(line + 5);
		else if (!strncmp(line, "Threads:", 8))
			*threads = atoi(line + 8);
	}
	fclose(f);
	return 0;
}

/* The state letter of /proc/PID/stat (R, S, T...), 0 if gone. */
static char state_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static int exe_of(pid_t pid, dev_t *dev, ino_t *ino)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st) < 0)
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static uint64_t ns_of(pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* Will the exec of the program at addr in tid succeed, as far as krgd can
 * tell without blocking? A PATH search tries directories where it is not:
 * those tries are not worth a stop. Checked only for a process in krgd's
 * own mount namespace: in a file view, the path may be served by krgd
 * itself (docs/fsview.md), which must not wait for its own answer. */
static bool runnable(struct sched_exec *x, pid_t tid, uint64_t addr)
{
	if (!addr || ns_of(tid) != x->mntns || !x->mntns)
		return true;
	char prog[4096];
	struct iovec l = { prog, sizeof(prog) - 1 }, r = { (void *)(uintptr_t)addr, sizeof(prog) - 1 };
	ssize_t n = process_vm_readv(tid, &l, 1, &r, 1, 0);
	if (n <= 0) {
		/* The string may end before a page it does not reach. */
		r.iov_len = l.iov_len = 4096 - (addr & 4095);
		n = process_vm_readv(tid, &l, 1, &r, 1, 0);
		if (n <= 0)
			return true;
	}
	prog[n] = 0;
	if (!memchr(prog, 0, (size_t)n + 1) || !prog[0])
		return true;
	char path[4200];
	snprintf(path, sizeof(path), "/proc/%d/%s/%s", (int)tid, prog[0] == '/' ? "root" : "cwd", prog);
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
}

static void drop(struct sched_exec *x, size_t i)
{
	x->p[i] = x->p[--x->n];
	if (!x->n)
		uv_timer_stop(&x->timer);
}

/* Processes stopped here at their exec and being moved: their stop is
 * ours. One table per krgd (a worker forked by the migration service
 * sees it as it was at its fork). */
static pid_t held[EXEC_MAX];

static void hold(pid_t pid, bool on)
{
	for (size_t i = 0; i < EXEC_MAX; i++)
		if (on ? held[i] == 0 : held[i] == pid) {
			held[i] = on ? pid : 0;
			return;
		}
}

bool krg_sched_exec_held(pid_t pid)
{
	for (size_t i = 0; pid > 0 && i < EXEC_MAX; i++)
		if (held[i] == pid)
			return true;
	return false;
}

static void moved(int status, uint64_t total_ms, uint64_t frozen_ms, void *data)
{
	pid_t pid = (pid_t)(intptr_t)data;
	(void)total_ms;
	(void)frozen_ms;
	hold(pid, false);
	if (status) {
		/* The original goes on here (the worker continues it too). */
		kill(pid, SIGCONT);
		log_info("sched: distant fork at exec: moving pid %d failed (%d); it runs here", (int)pid, status);
	}
}

static void tick(uv_timer_t *t)
{
	struct sched_exec *x = t->data;
	uint64_t now = uv_now(x->loop);
	for (size_t i = x->n; i-- > 0;) {
		struct xpend *e = &x->p[i];
		uint64_t start;
		if (sched_proc_stat(e->pid, NULL, &start) < 0 || start != e->start) {
			drop(x, i);
			continue;
		}
		char st = state_of(e->pid);
		if (st != 'T') {
			if (now - e->ms > EXEC_GIVE_UP_MS) {
				kill(e->pid, SIGCONT);
				drop(x, i);
			}
			continue;
		}
		dev_t dev = 0;
		ino_t ino = 0;
		if (exe_of(e->pid, &dev, &ino) < 0 || (dev == e->dev && ino == e->ino)) {
			/* Its exec failed: it goes on with the old program. */
			kill(e->pid, SIGCONT);
			drop(x, i);
			continue;
		}
		char err[256];
		hold(e->pid, true);
		int r = sched_move(x->sc, e->id, e->node, moved, (void *)(intptr_t)e->pid, err, sizeof(err));
		sched_distant_placed(x->sc, e->id, e->node, r == 0);
		if (r < 0) {
			hold(e->pid, false);
			x->failed++;
			log_info("sched: distant fork at exec: cannot place %u on node %u: %s", e->id, e->node, err);
			kill(e->pid, SIGCONT);
		} else {
			x->placed++;
			log_info("sched: distant fork: %u placed on node %u at its exec", e->id, e->node);
		}
		drop(x, i);
	}
}

bool sched_exec_hook(struct sched_exec *x, pid_t tid, uint64_t path)
{
	pid_t tgid = 0, ppid = 0;
	int threads = 0;
	uint32_t id, home;
	if (!x || x->n == EXEC_MAX || status_of(tid, &tgid, &ppid, &threads) < 0 || tgid != tid || threads != 1 ||
	    sched_proc_kind(x->sc, tid, &id, &home) != KRG_PROC_ORDINARY)
		return false;
	for (size_t i = 0; i < x->n; i++)
		if (x->p[i].pid == tid)
			return false;
	struct xpend e = { .pid = tid, .id = krg_procid_make(x->self, (uint32_t)tid) };
	if (sched_distant_target(x->sc, e.id, tid, ppid, &e.node) <= 0 || !runnable(x, tid, path) ||
	    exe_of(tid, &e.dev, &e.ino) < 0 || sched_proc_stat(tid, NULL, &e.start) < 0)
		return false;
	e.ms = uv_now(x->loop);
	x->p[x->n++] = e;
	if (!uv_is_active((uv_handle_t *)&x->timer))
		uv_timer_start(&x->timer, tick, EXEC_TICK_MS, EXEC_TICK_MS);
	return true;
}

int sched_exec_new(struct krg_sched *sc, uv_loop_t *loop, uint32_t self, struct sched_exec **out)
{
	struct sched_exec *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->sc = sc;
	x->loop = loop;
	x->self = self;
	x->mntns = ns_of(getpid());
	uv_timer_init(loop, &x->timer);
	x->timer.data = x;
	*out = x;
	return 0;
}

static void closed(uv_handle_t *h)
{
	free(h->data);
}

void sched_exec_free(struct sched_exec *x)
{
	if (!x)
		return;
	/* Noted children are let go here. */
	for (size_t i = 0; i < x->n; i++)
		kill(x->p[i].pid, SIGCONT);
	uv_close((uv_handle_t *)&x->timer, closed);
}

void sched_exec_stats(const struct sched_exec *x, uint64_t *placed, uint64_t *failed)
{
	*placed = x ? x->placed : 0;
	*failed = x ? x->failed : 0;
}
