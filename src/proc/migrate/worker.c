/* worker.c — the source side of one migration, in a child of krgd
 * (mig-int.h). Talks to krgd over `sock`:
 *   1. SIGSTOP the process and wait until every thread is stopped;
 *   2. dump it (ckpt_dump) into `dir`; if it has fds that cannot move
 *      (a terminal, a pipe or socket shared with other processes), keep
 *      each original at a free high number and put a FIFO
 *      (MIG_FIFO_DIR/<id>/fd<N>) at its number, then dump again: the FIFO
 *      is restored by path on the target, where the holder pumps it;
 *   3. MF_DUMPED "N:M:r|w ..." -> krgd, which sends the image;
 *   4. MF_COMMIT 1: exec the deputy in the process (it keeps the pid, the
 *      parent and the originals); MF_COMMIT 0: kill it (it was a migrant
 *      here); MF_ABORT: originals back, SIGCONT — it goes on here.
 *   5. MF_DONE or MF_ERR, exit. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ckpt/ckpt.h"
#include "proc/migrate/inject.h"
#include "proc/migrate/mig-int.h"
#include "proc/migrate/worker.h"

struct prox {
	int num;      /* fd number in the process */
	int keep;     /* where the original is kept (for the deputy) */
	bool reads;
	bool cloexec;
	int hold;     /* our O_RDWR end of the FIFO while it is set up */
};

static void sendf(int sock, uint8_t type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sendf(int sock, uint8_t type, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	mig_send(sock, type, 0, 0, buf, n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void mig_rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
}

static bool all_stopped(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool ok = true;
	struct dirent *e;
	while (ok && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		char *p = strrchr(buf, ')');
		if (!p || (p[2] != 'T' && p[2] != 't'))
			ok = false;
	}
	closedir(d);
	return ok;
}

/* Some thread of pid is in read(fd). */
static bool in_read(pid_t pid, int fd)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool yes = false;
	struct dirent *e;
	while (!yes && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/syscall", pid, e->d_name);
		int f = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
		if (f >= 0)
			close(f);
		if (n <= 0)
			continue;
		buf[n] = 0;
		unsigned long nr, a1;
		if (sscanf(buf, "%lu 0x%lx", &nr, &a1) == 2 && nr == SYS_read && a1 == (unsigned long)fd)
			yes = true;
	}
	closedir(d);
	return yes;
}

static int freeze(pid_t pid)
{
	if (kill(pid, SIGSTOP) < 0)
		return -errno;
	for (int i = 0; i < 5000; i++) {
		if (all_stopped(pid))
			return 0;
		if (kill(pid, 0) < 0)
			return -ESRCH;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static bool proxyable(pid_t pid, int fd)
{
	char path[64], link[256];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = 0;
	return !strncmp(link, "pipe:", 5) || !strncmp(link, "socket:", 7) || !strncmp(link, "/dev/pts/", 9) ||
	       !strncmp(link, "/dev/tty", 8) || !strcmp(link, "/dev/console");
}

/* fdinfo flags (octal) of fd. */
static int fd_flags(pid_t pid, int fd)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	if (f >= 0)
		close(f);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strstr(buf, "flags:");
	return p ? (int)strtol(p + 6, NULL, 8) : -1;
}

/* Swap each proxied fd for a FIFO (and back, with undo). */
static int swap_fds(pid_t pid, uint32_t id, uid_t uid, gid_t gid, struct prox *px, size_t n, bool undo,
		    char *err, size_t errlen)
{
	struct inj j;
	int r = inj_attach(&j, pid);
	if (r < 0) {
		snprintf(err, errlen, "process %d: cannot take hold of it: %s", pid, strerror(-r));
		inj_detach(&j);
		return r;
	}
	long scratch = inj_call(&j, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scratch < 0 && scratch > -4096) {
		snprintf(err, errlen, "process %d: scratch page: %s", pid, strerror((int)-scratch));
		inj_detach(&j);
		return (int)scratch;
	}
	r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		long v;
		if (undo) {
			if (px[i].keep < 0)
				continue;
			v = inj_call(&j, SYS_dup3, px[i].keep, px[i].num, px[i].cloexec ? O_CLOEXEC : 0, 0, 0, 0);
			inj_call(&j, SYS_close, px[i].keep, 0, 0, 0, 0, 0);
			px[i].keep = -1;
			continue;
		}
		int fl = fd_flags(pid, px[i].num);
		if (fl < 0) {
			r = -EBADF;
			break;
		}
		int acc = fl & O_ACCMODE;
		px[i].reads = acc == O_RDONLY || (acc == O_RDWR && px[i].num == 0);
		px[i].cloexec = fl & O_CLOEXEC;
		char path[128];
		snprintf(path, sizeof(path), "%s/%u/fd%d", MIG_FIFO_DIR, id, px[i].num);
		unlink(path);
		if (mkfifo(path, 0600) < 0 || chown(path, uid, gid) < 0) {
			r = -errno;
			break;
		}
		px[i].hold = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		v = inj_call(&j, SYS_fcntl, px[i].num, F_DUPFD, 1000, 0, 0, 0);
		if (v < 0) {
			r = (int)v;
			break;
		}
		px[i].keep = (int)v;
		if ((r = inj_poke(&j, (uint64_t)scratch, path, strlen(path) + 1)) < 0)
			break;
		int of = (px[i].reads ? O_RDONLY : O_WRONLY) | (fl & (O_NONBLOCK | O_APPEND));
		v = inj_call(&j, SYS_openat, AT_FDCWD, scratch, of, 0, 0, 0);
		if (v < 0) {
			r = (int)v;
			break;
		}
		long d = inj_call(&j, SYS_dup3, v, px[i].num, px[i].cloexec ? O_CLOEXEC : 0, 0, 0, 0);
		inj_call(&j, SYS_close, v, 0, 0, 0, 0, 0);
		if (d < 0) {
			r = (int)d;
			break;
		}
	}
	inj_call(&j, SYS_munmap, scratch, 4096, 0, 0, 0, 0);
	inj_detach(&j);
	if (r < 0)
		snprintf(err, errlen, "process %d: setting up its proxied fds: %s", pid, strerror(-r));
	return r;
}

/* Turn the process into the deputy: execve injected into its leader. */
static int become_deputy(pid_t pid, char *const *argv, char *err, size_t errlen)
{
	struct inj j;
	int r = inj_attach(&j, pid);
	if (r < 0) {
		snprintf(err, errlen, "process %d: cannot take hold of it: %s", pid, strerror(-r));
		inj_detach(&j);
		return r;
	}
	/* argv strings then the pointer array, in a fresh mapping. */
	size_t argc = 0, slen = 0;
	while (argv[argc])
		slen += strlen(argv[argc++]) + 1;
	size_t len = ((slen + (argc + 1) * 8 + 64) + 4095) & ~4095UL;
	long m = inj_call(&j, SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m < 0 && m > -4096) {
		inj_detach(&j);
		snprintf(err, errlen, "process %d: mmap: %s", pid, strerror((int)-m));
		return (int)m;
	}
	uint8_t *buf = calloc(1, len);
	if (!buf) {
		inj_detach(&j);
		return -ENOMEM;
	}
	uint64_t *ptrs = (uint64_t *)buf, path_at = (uint64_t)m + (argc + 1) * 8;
	size_t off = (argc + 1) * 8;
	for (size_t i = 0; i < argc; i++) {
		ptrs[i] = (uint64_t)m + off;
		memcpy(buf + off, argv[i], strlen(argv[i]) + 1);
		off += strlen(argv[i]) + 1;
	}
	r = inj_poke(&j, (uint64_t)m, buf, len);
	free(buf);
	/* The deputy starts with every signal blocked (it takes them with a
	 * signalfd) and no interval timer (those survive exec: the migrant
	 * has its own). A zero itimerval and a full mask, after the strings. */
	uint8_t tail[64];
	memset(tail, 0, 32);
	memset(tail + 32, 0xff, 8);
	uint64_t tail_at = (uint64_t)m + len - sizeof(tail);
	if (r == 0 && len - (argc + 1) * 8 - slen >= sizeof(tail) && inj_poke(&j, tail_at, tail, sizeof(tail)) == 0) {
		inj_call(&j, SYS_rt_sigprocmask, SIG_SETMASK, (long)(tail_at + 32), 0, 8, 0, 0);
		for (int which = 0; which < 3; which++)
			inj_call(&j, SYS_setitimer, which, (long)tail_at, 0, 0, 0, 0);
	}
	long v = r < 0 ? r : inj_call(&j, SYS_execve, (long)path_at, m, 0, 0, 0, 0);
	if (!j.execed) {
		inj_call(&j, SYS_munmap, m, (long)len, 0, 0, 0, 0);
		inj_detach(&j);
		snprintf(err, errlen, "process %d: exec of %s: %s", pid, argv[0], strerror(v < 0 ? (int)-v : EIO));
		return v < 0 ? (int)v : -EIO;
	}
	inj_detach(&j);
	return 0;
}

static int parse_refused(const char *msg, pid_t pid, struct prox *px, size_t *n)
{
	*n = 0;
	const char *p = msg;
	while (p && *p) {
		int rp, fd;
		if (sscanf(p, "process %d fd %d:", &rp, &fd) == 2) {
			if (rp != pid || !proxyable(pid, fd) || *n >= MIG_MAX_PROXIES)
				return -1;
			px[(*n)++] = (struct prox){ .num = fd, .keep = -1, .hold = -1 };
		} else if (strncmp(p, "checkpoint refused", 18)) {
			return -1;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return *n ? 0 : -1;
}

static void chown_dir(const char *dir, uid_t uid, gid_t gid)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW);
	closedir(d);
	chown(dir, uid, gid);
}

_Noreturn void mig_worker_main(int sock, const struct mig_work *w)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	pid_t pid = w->pid;
	char err[3000];
	struct prox px[MIG_MAX_PROXIES];
	size_t np = 0;
	char fifodir[128];
	snprintf(fifodir, sizeof(fifodir), "%s/%u", MIG_FIFO_DIR, w->id);

	for (int i = 0; w->wait_read_fd >= 0 && i < 10000 && !in_read(pid, w->wait_read_fd); i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	int r = freeze(pid);
	if (r < 0) {
		kill(pid, SIGCONT);
		sendf(sock, MF_ERR, "process %u: cannot freeze it: %s", w->id, strerror(-r));
		_exit(0);
	}
	struct ckpt_error ce = { { 0 } };
	struct ckpt_dump_opts o = { .process_only = true };
	r = ckpt_dump(pid, w->dir, &o, &ce);
	if (r < 0) {
		if (parse_refused(ce.msg, pid, px, &np) < 0) {
			kill(pid, SIGCONT);
			sendf(sock, MF_ERR, "%s", ce.msg);
			_exit(0);
		}
		mkdir(MIG_FIFO_DIR, 0755);
		mkdir(fifodir, 0755);
		r = swap_fds(pid, w->id, w->uid, w->gid, px, np, false, err, sizeof(err));
		if (r == 0) {
			memset(&ce, 0, sizeof(ce));
			o.ignore_unsupported = true;
			r = ckpt_dump(pid, w->dir, &o, &ce);
			if (r < 0)
				snprintf(err, sizeof(err), "%s", ce.msg);
		}
		if (r < 0) {
			char e2[256];
			swap_fds(pid, w->id, w->uid, w->gid, px, np, true, e2, sizeof(e2));
			for (size_t i = 0; i < np; i++)
				if (px[i].hold >= 0)
					close(px[i].hold);
			mig_rm_rf(fifodir);
			kill(pid, SIGCONT);
			sendf(sock, MF_ERR, "%s", err);
			_exit(0);
		}
	} else if (w->migrant_here) {
		/* Its fds are the FIFOs of the holder here: no proxies to set up. */
	}
	chown_dir(w->dir, w->uid, w->gid);
	char spec[2048] = "";
	size_t sl = 0;
	for (size_t i = 0; i < np; i++)
		sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, "%s%d:%d:%c", i ? " " : "", px[i].num, px[i].keep,
				       px[i].reads ? 'r' : 'w');
	mig_send(sock, MF_DUMPED, 0, 0, spec, strlen(spec));

	/* Wait for the verdict. */
	uint8_t buf[8192];
	ssize_t n;
	do
		n = recv(sock, buf, sizeof(buf) - 1, 0);
	while (n < 0 && errno == EINTR);
	struct mig_hdr h = { 0 };
	if (n >= (ssize_t)sizeof(h))
		memcpy(&h, buf, sizeof(h));
	for (size_t i = 0; i < np; i++)
		if (px[i].hold >= 0)
			close(px[i].hold);
	if (h.type == MF_COMMIT && h.arg == 1) {
		/* argv: NUL-separated strings, proxies appended. */
		buf[n] = 0;
		char *argv[8 + MIG_MAX_PROXIES];
		size_t ac = 0;
		for (char *p = (char *)buf + sizeof(h); p < (char *)buf + n && ac < 7; p += strlen(p) + 1)
			argv[ac++] = p;
		char ps[MIG_MAX_PROXIES][40];
		for (size_t i = 0; i < np; i++) {
			snprintf(ps[i], sizeof(ps[i]), "%d:%d:%c", px[i].num, px[i].keep, px[i].reads ? 'r' : 'w');
			argv[ac++] = ps[i];
		}
		argv[ac] = NULL;
		r = ac >= 5 ? become_deputy(pid, argv, err, sizeof(err)) : -EINVAL;
		mig_rm_rf(fifodir);
		if (r < 0) {
			/* The migrant runs elsewhere already: this copy must go. */
			kill(pid, SIGKILL);
			sendf(sock, MF_ERR, "%s", err);
			_exit(0);
		}
		kill(pid, SIGCONT);
		mig_send(sock, MF_DONE, 0, 0, NULL, 0);
	} else if (h.type == MF_COMMIT) {
		kill(pid, SIGKILL);
		mig_send(sock, MF_DONE, 0, 0, NULL, 0);
	} else {
		/* Abort, or krgd went away: it goes on here. */
		if (np) {
			swap_fds(pid, w->id, w->uid, w->gid, px, np, true, err, sizeof(err));
			mig_rm_rf(fifodir);
		}
		kill(pid, SIGCONT);
		mig_send(sock, MF_DONE, 0, 0, NULL, 0);
	}
	_exit(0);
}
