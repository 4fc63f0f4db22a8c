/* procfs.c — reading processes from /proc: the krg processes of a node
 * are the descendants of its krgd, found from the ppid links at the time
 * of the request (no cached table to go stale). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/fileio.h"
#include "lib/macro.h"
#include "lib/procfs.h"

/* Parse /proc/PID/stat. comm may hold spaces and ')' so the fields start
 * after the last ')'. */
static int read_stat(pid_t pid, struct proc_info *p)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = krg_read_small(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!open || !close || close < open || close[1] != ' ')
		return -EBADMSG;
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	size_t cl = (size_t)(close - open - 1);
	if (cl >= sizeof(p->comm))
		cl = sizeof(p->comm) - 1;
	memcpy(p->comm, open + 1, cl);
	p->comm[cl] = 0;
	/* Fields from 3 (state) on. */
	char *f[64] = { 0 };
	size_t nf = 0;
	char *save = NULL;
	for (char *tok = strtok_r(close + 2, " \n", &save); tok && nf < ARRAY_SIZE(f); tok = strtok_r(NULL, " \n", &save))
		f[nf++] = tok;
	/* f[0] = field 3 (state), f[1] = 4 (ppid), f[11] = 14 (utime),
	 * f[12] = 15 (stime), f[17] = 20 (num_threads), f[19] = 22
	 * (starttime), f[21] = 24 (rss). */
	if (nf < 22)
		return -EBADMSG;
	p->state = f[0][0];
	p->ppid = (pid_t)strtol(f[1], NULL, 10);
	p->cpu_ticks = strtoull(f[11], NULL, 10) + strtoull(f[12], NULL, 10);
	p->threads = (uint32_t)strtoul(f[17], NULL, 10);
	p->start_ticks = strtoull(f[19], NULL, 10);
	long rss = strtol(f[21], NULL, 10);
	p->rss_pages = rss > 0 ? (uint64_t)rss : 0;
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = ((const struct proc_info *)a)->pid, y = ((const struct proc_info *)b)->pid;
	return (x > y) - (x < y);
}

static struct proc_info *find(struct proc_info *v, size_t n, pid_t pid)
{
	struct proc_info key = { .pid = pid };
	return bsearch(&key, v, n, sizeof(*v), cmp_pid);
}

int procfs_scan(pid_t root, struct proc_info **out, size_t *n_out)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	struct proc_info *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct proc_info *nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = nc;
		}
		if (read_stat((pid_t)pid, &v[n]) == 0)
			n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_pid);
	/* Mark descendants of root: walk each chain up; 1 = krg, 2 = not,
	 * memoised in a side array so every chain is walked once. */
	_cleanup_free_ uint8_t *memo = calloc(n ? n : 1, 1);
	if (!memo) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		size_t chain[64];
		size_t len = 0, k = i;
		uint8_t verdict = 2;
		for (int depth = 0; depth < 4096; depth++) {
			if (memo[k]) {
				verdict = memo[k];
				break;
			}
			if (len < ARRAY_SIZE(chain))
				chain[len++] = k;
			pid_t pp = v[k].ppid;
			if (pp == root) {
				verdict = 1;
				break;
			}
			if (pp <= 0 || v[k].pid == root)
				break;
			struct proc_info *parent = find(v, n, pp);
			if (!parent)
				break;
			k = (size_t)(parent - v);
		}
		for (size_t c = 0; c < len; c++)
			memo[chain[c]] = verdict;
	}
	for (size_t i = 0; i < n; i++)
		v[i].krg = memo[i] == 1 && v[i].pid != root;
	*out = v;
	*n_out = n;
	return 0;
}

bool procfs_is_descendant(pid_t pid, pid_t root)
{
	struct proc_info p;
	if (pid == root)
		return false;
	for (int depth = 0; depth < 4096 && pid > 0; depth++) {
		if (read_stat(pid, &p) < 0)
			return false;
		if (p.ppid == root)
			return true;
		pid = p.ppid;
	}
	return false;
}

int procfs_uids(pid_t pid, uid_t *ruid, uid_t *suid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ssize_t n = krg_read_small(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	char *l = strstr(buf, "\nUid:");
	unsigned long r, e, s;
	if (!l || sscanf(l + 5, "%lu %lu %lu", &r, &e, &s) != 3)
		return -EBADMSG;
	*ruid = (uid_t)r;
	*suid = (uid_t)s;
	return 0;
}

int procfs_cmdline(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	ssize_t n = krg_read_small(path, buf, len);
	if (n < 0)
		return (int)n;
	if (n == 0) {
		/* A leader that exited (pthread_exit in main) has no mm: its
		 * threads still show the command line. */
		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		DIR *d = opendir(path);
		struct dirent *de;
		while (d && n == 0 && (de = readdir(d))) {
			if (atoi(de->d_name) <= 0 || atoi(de->d_name) == pid)
				continue;
			char tp[96];
			snprintf(tp, sizeof(tp), "/proc/%d/task/%s/cmdline", (int)pid, de->d_name);
			n = krg_read_small(tp, buf, len);
			if (n < 0)
				n = 0;
		}
		if (d)
			closedir(d);
	}
	while (n > 0 && buf[n - 1] == 0)
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == 0 || buf[i] == '\n' || buf[i] == '\t')
			buf[i] = ' ';
		else if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?'; /* keep terminals safe */
	buf[n] = 0;
	return (int)n;
}

long procfs_clk_tck(void)
{
	long t = sysconf(_SC_CLK_TCK);
	return t > 0 ? t : 100;
}

int procfs_uptime_ms(uint64_t *ms)
{
	char buf[128];
	ssize_t n = krg_read_small("/proc/uptime", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	double up = strtod(buf, NULL);
	if (!(up >= 0))
		return -EBADMSG;
	*ms = (uint64_t)(up * 1000.0);
	return 0;
}
