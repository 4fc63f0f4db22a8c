/* lib/pidrange.c — see pidrange.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "lib/pidrange.h"
#include "lib/config.h"

#define LAST_PID "/proc/sys/kernel/ns_last_pid"
/* Moved back to the start this far before the end: the pids forked
 * between two steers must not spill into the next node's range. */
#define SLACK 256

struct krg_pidrange krg_pidrange_of(uint32_t self, uint32_t max_id, long pid_max)
{
	struct krg_pidrange r = { 0, 0 };
	if (self > max_id || pid_max <= 0)
		return r;
	long size = pid_max / ((long)max_id + 2);
	/* Fewer than this per node is not worth it: a range would be
	 * overrun between two steers. */
	if (size < 2 * SLACK)
		return r;
	r.lo = (pid_t)(size * ((long)self + 1));
	r.hi = (pid_t)(r.lo + size);
	return r;
}

static int read_last(int fd, long *out)
{
	char b[32];
	ssize_t n = pread(fd, b, sizeof(b) - 1, 0);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	b[n] = 0;
	*out = strtol(b, NULL, 10);
	return 0;
}

static int write_last(int fd, long v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%ld", v);
	return pwrite(fd, b, (size_t)n, 0) == n ? 0 : -errno;
}

int krg_pidrange_steer(const struct krg_pidrange *r)
{
	if (!r->lo)
		return 0;
	int fd = open(LAST_PID, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	long last = 0;
	int ret = read_last(fd, &last);
	if (ret == 0 && (last + 1 < r->lo || last + 1 >= r->hi - SLACK))
		ret = write_last(fd, r->lo - 1) == 0 ? 1 : -errno;
	close(fd);
	return ret;
}

/* struct clone_args of clone3 (CLONE_ARGS_SIZE_VER2). */
struct kclone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

pid_t krg_pidrange_fork_as(pid_t want)
{
	/* Not by moving the cursor: another process of the node forking
	 * meanwhile (seen: a file view server starting its helpers) would
	 * take WANT, and our child the next pid, often the very one the
	 * migrant restored next needs. clone3 set_tid names the pid. It is
	 * done by a plain fork()ed child C, single-threaded (glibc's state is
	 * whole there, as fork() left it), with CLONE_PARENT: the new process
	 * is the caller's child. CLONE_CHILD_SETTID/CLEARTID on glibc's own
	 * tid word (the address the kernel holds for it: PR_GET_TID_ADDRESS),
	 * as glibc's fork() does, so raise() & co. name the right thread. C
	 * passes the pid back through a pipe and exits. */
	int p[2];
	if (want <= 1 || pipe2(p, O_CLOEXEC) < 0)
		return fork();
	pid_t c = fork();
	if (c < 0) {
		close(p[0]);
		close(p[1]);
		return c;
	}
	if (c == 0) {
		close(p[0]);
		uint64_t tid = (uint64_t)want;
		int *tidp = NULL;
		/* exit_signal 0: CLONE_PARENT refuses another; the child gets
		 * C's own (SIGCHLD), as a sibling does. */
		struct kclone_args a = { .flags = CLONE_PARENT, .set_tid = (uint64_t)(uintptr_t)&tid, .set_tid_size = 1 };
		if (prctl(PR_GET_TID_ADDRESS, &tidp, 0, 0, 0) == 0 && tidp) {
			a.flags |= CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
			a.child_tid = (uint64_t)(uintptr_t)tidp;
		}
		long r = syscall(SYS_clone3, &a, sizeof(a));
		if (r == 0) {
			close(p[1]);
			return 0;
		}
		pid_t got = r > 0 ? (pid_t)r : -1;
		if (write(p[1], &got, sizeof(got)) != (ssize_t)sizeof(got))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	pid_t got = -1;
	ssize_t n;
	while ((n = read(p[0], &got, sizeof(got))) < 0 && errno == EINTR)
		;
	close(p[0]);
	while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(got) && got > 0)
		return got;
	return fork(); /* WANT taken, or clone3/set_tid refused: any pid */
}

struct krg_pidrange krg_pidrange_of_config(const struct krg_config *cfg)
{
	uint32_t max_id = cfg->node_id;
	for (size_t i = 0; i < cfg->n_nodes; i++)
		if (cfg->nodes[i].id > max_id)
			max_id = cfg->nodes[i].id;
	long pid_max = 0;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
	if (!f || fscanf(f, "%ld", &pid_max) != 1)
		pid_max = 0;
	if (f)
		fclose(f);
	return krg_pidrange_of(cfg->node_id, max_id, pid_max);
}
