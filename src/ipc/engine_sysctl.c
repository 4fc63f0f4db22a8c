/* engine_sysctl.c — this machine's IPC limits from /proc/sys/kernel. The
 * only I/O of the engine library, kept out of the pure core. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include "ipc/ipc_engine.h"
#include "lib/fileio.h"

/* dir/name's text into buf (NUL-terminated): 1, 0 if the file is
 * missing (an older kernel), -errno. */
static int read_param(const char *dir, const char *name, char *buf, size_t len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	ssize_t r = krg_read_small(path, buf, len);
	return r == -ENOENT ? 0 : r < 0 ? (int)r : 1;
}

/* Reads up to n unsigned numbers from dir/name. Count read, 0 if the file
 * is missing, -errno on error or garbage. */
static int read_nums(const char *dir, const char *name, uint32_t *v, int n)
{
	char buf[256];
	int r = read_param(dir, name, buf, sizeof buf);
	if (r <= 0)
		return r;
	const char *p = buf;
	int got = 0;
	while (got < n) {
		unsigned long long x;
		int used;
		if (sscanf(p, "%llu%n", &x, &used) != 1)
			break;
		if (x > UINT32_MAX)
			return -ERANGE;
		v[got++] = (uint32_t)x;
		p += used;
	}
	return got == n ? got : -EINVAL;
}

/* One 64-bit number from dir/name: 1, 0 if missing, -errno. */
static int read_u64(const char *dir, const char *name, uint64_t *v)
{
	char buf[64];
	int r = read_param(dir, name, buf, sizeof buf);
	if (r <= 0)
		return r;
	unsigned long long x;
	if (sscanf(buf, "%llu", &x) != 1)
		return -EINVAL;
	*v = x;
	return 1;
}

int krg_ipc_limits_read(struct krg_ipc_limits *l, const char *dir)
{
	uint32_t v[4];
	int r;
	if ((r = read_nums(dir, "msgmax", v, 1)) < 0)
		return r;
	if (r)
		l->msgmax = v[0];
	if ((r = read_nums(dir, "msgmnb", v, 1)) < 0)
		return r;
	if (r)
		l->msgmnb = v[0];
	if ((r = read_nums(dir, "msgmni", v, 1)) < 0)
		return r;
	if (r)
		l->msgmni = v[0];
	/* "sem" holds SEMMSL SEMMNS SEMOPM SEMMNI, in that order. */
	if ((r = read_nums(dir, "sem", v, 4)) < 0)
		return r;
	if (r) {
		l->semmsl = v[0];
		l->semmns = v[1];
		l->semopm = v[2];
		l->semmni = v[3];
	}
	if ((r = read_u64(dir, "shmmax", &l->shmmax)) < 0 ||
			(r = read_u64(dir, "shmall", &l->shmall)) < 0)
		return r;
	if ((r = read_nums(dir, "shmmni", v, 1)) < 0)
		return r;
	if (r)
		l->shmmni = v[0];
	return 0;
}
