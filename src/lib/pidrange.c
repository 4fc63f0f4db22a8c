/* lib/pidrange.c — see pidrange.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
	long last;
	int ret = read_last(fd, &last);
	if (ret == 0 && (last + 1 < r->lo || last + 1 >= r->hi - SLACK))
		ret = write_last(fd, r->lo - 1) == 0 ? 1 : -errno;
	close(fd);
	return ret;
}

pid_t krg_pidrange_fork_as(pid_t want)
{
	long last = -1;
	int fd = want > 1 ? open(LAST_PID, O_RDWR | O_CLOEXEC) : -1;
	if (fd >= 0 && (read_last(fd, &last) < 0 || write_last(fd, want - 1) < 0))
		last = -1;
	pid_t pid = fork();
	if (pid == 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	int e = errno;
	/* Put the cursor back (WANT may be in another node's range). */
	if (fd >= 0) {
		if (last >= 0)
			write_last(fd, last);
		close(fd);
	}
	errno = e;
	return pid;
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
