/* worker.c — the source side of one migration, in a child of krgd
 * (mig-int.h). Talks to krgd over `sock`:
 *   0. pre-copy: its memory copied into the image's pages file while it
 *      runs, in rounds (MF_PRECOPY, krgd answers MF_SENT once it sent
 *      that much), until what was written meanwhile is small;
 *   1. SIGSTOP the process and wait until every thread is stopped
 *      (MF_FROZEN);
 *   2. dump it (ckpt_dump) into `dir`; if it has fds that cannot move
 *      (a terminal, a pipe or socket shared with other processes), keep
 *      each original at a free high number and put a FIFO
 *      (MIG_FIFO_DIR/<id>/fd<N>) at its number, then dump again: the FIFO
 *      is restored by path on the target, where the holder pumps it;
 *   3. MF_DUMPED "N:M:r|w ..." (arg: the signals pending before the
 *      dump, which the image carries) -> krgd, which sends the image;
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "lib/fdpass.h"
#include "lib/fileio.h"
#include "lib/fault.h"
#include "ckpt/ckpt.h"
#include "ipc/intercept.h"
#include "proc/migrate/mig-int.h"
#include "proc/migrate/worker.h"
#include "proc/schedsvc.h"

struct prox {
	int num;      /* fd number in the process */
	int keep;     /* where the original is kept (for the deputy) */
	bool reads;
	bool tty;
	int stype;        /* a socket: its type (forwarded as a socketpair end of that type) */
	struct mig_sockaddrs sa; /* ... and its addresses, which the migrant's getsockname/getpeername get */
	char tpath[64];   /* a terminal is not kept open in the process (the dump would take it): reopened by path */
	unsigned rows, cols;
	bool cloexec;
	int oflags;       /* its open flags (fdinfo), less close-on-exec */
	int wslave;       /* a terminal: our own dup, so it lives on until the deputy reopens it */
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
	krg_rm_tree(AT_FDCWD, dir, NULL);
}

/* Whether match() says yes of /proc/pid/task/TID/<file> of some thread
 * of pid (read whole, up to 511 bytes); -1 if pid has no task list. */
static int some_thread(pid_t pid, const char *file, bool (*match)(const char *text, int arg), int arg)
{
	char path[96], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	bool yes = false;
	struct dirent *e;
	while (!yes && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", pid, e->d_name, file);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		yes = match(buf, arg);
	}
	closedir(d);
	return yes;
}

/* A thread's stat: running (an exited leader, a zombie thread, stays as
 * it is). */
static bool not_stopped(const char *stat, int unused)
{
	const char *p = strrchr(stat, ')');
	return !p || (p[2] != 'T' && p[2] != 't' && p[2] != 'Z' && p[2] != 'X');
}

static bool all_stopped(pid_t pid)
{
	return some_thread(pid, "stat", not_stopped, 0) == 0;
}

/* A thread's syscall: read(fd). */
static bool reading(const char *syscall, int fd)
{
	unsigned long nr, a1;
	return sscanf(syscall, "%lu 0x%lx", &nr, &a1) == 2 && nr == SYS_read && a1 == (unsigned long)fd;
}

/* Some thread of pid is in read(fd). */
static bool in_read(pid_t pid, int fd)
{
	return some_thread(pid, "syscall", reading, fd) == 1;
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

/* Signals pending on process pid (its own and its leader's), as a mask
 * (bit s-1 for signal s). */
unsigned long long mig_pending_of(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	unsigned long long m = 0, v;
	while (f && fgets(line, sizeof(line), f))
		if ((sscanf(line, "SigPnd: %llx", &v) == 1 || sscanf(line, "ShdPnd: %llx", &v) == 1))
			m |= v;
	if (f)
		fclose(f);
	return m;
}

unsigned long long mig_timer_signals(pid_t pid)
{
	unsigned long long m = 1ULL << (SIGALRM - 1) | 1ULL << (SIGVTALRM - 1) | 1ULL << (SIGPROF - 1);
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/timers", (int)pid);
	FILE *f = fopen(path, "re");
	int s;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "signal: %d/", &s) == 1 && s >= 1 && s <= 64)
			m |= 1ULL << (s - 1);
	if (f)
		fclose(f);
	return m;
}

/* Fault injection for the tests (migrate.sh, signals while frozen): with
 * KRG_FAULT=mig-hold:DIR and DIR/<id>.hold present, the dumped process is
 * held frozen, DIR/<id>.frozen created, until <id>.hold is removed. */
static void test_hold(uint32_t id)
{
	char buf[256];
	const char *dir = krg_fault_value("mig-hold", buf, sizeof(buf));
	char hold[512], frozen[512];
	if (!dir || !dir[0])
		return;
	snprintf(hold, sizeof(hold), "%s/%u.hold", dir, id);
	snprintf(frozen, sizeof(frozen), "%s/%u.frozen", dir, id);
	if (access(hold, F_OK) < 0)
		return;
	int fd = open(frozen, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	while (access(hold, F_OK) == 0) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
}

/* What fd of process pid is (its /proc link, "" if none). */
static const char *fd_link(pid_t pid, int fd, char *link, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", ckpt_live_tid(pid), fd);
	ssize_t n = readlink(path, link, len - 1);
	link[n > 0 ? n : 0] = 0;
	return link;
}

static bool tty_link(const char *link)
{
	return !strncmp(link, "/dev/pts/", 9) || !strncmp(link, "/dev/tty", 8) || !strcmp(link, "/dev/console");
}

static bool proxyable(pid_t pid, int fd)
{
	char link[256];
	fd_link(pid, fd, link, sizeof(link));
	return !strncmp(link, "pipe:", 5) || !strncmp(link, "socket:", 7) || tty_link(link);
}

/* fdinfo flags (octal) of fd. */
static int fd_flags(pid_t pid, int fd)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", ckpt_live_tid(pid), fd);
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

/* The injector on pid; err says why not. */
static int attach(pid_t pid, struct ckpt_inj **j, char *err, size_t errlen)
{
	int r = ckpt_inj_attach(j, pid);
	if (r < 0) {
		snprintf(err, errlen, "process %d: cannot take hold of it: %s", pid, strerror(-r));
		ckpt_inj_detach(*j);
	}
	return r;
}

/* What the real socket answers now, at the dump, that the migrant's
 * krgd serves it later (mig_sock_hook): its addresses, and its peer's
 * credentials, label and groups as the kernel vouched for them at
 * connect time (the migrant's socketpair end would give the holder's:
 * root). An error is kept as the answer. */
static void sock_answers(int s, struct mig_sockaddrs *sa)
{
	static const int opt[MIG_SA_N] = { [MIG_SA_CRED] = SO_PEERCRED, [MIG_SA_SEC] = SO_PEERSEC,
					   [MIG_SA_GROUPS] = SO_PEERGROUPS };
	for (int w = 0; w < MIG_SA_N; w++) {
		socklen_t al = w == MIG_SA_NAME || w == MIG_SA_PEER ? MIG_ADDR_MAX : MIG_SA_MAX;
		struct sockaddr *a = (struct sockaddr *)sa->a[w];
		int k = w == MIG_SA_NAME ? getsockname(s, a, &al)
			: w == MIG_SA_PEER ? getpeername(s, a, &al)
					   : getsockopt(s, SOL_SOCKET, opt[w], sa->a[w], &al);
		size_t max = w == MIG_SA_NAME || w == MIG_SA_PEER ? MIG_ADDR_MAX : MIG_SA_MAX;
		sa->len[w] = (int16_t)(k < 0 ? -errno : al > max ? (int)max : (int)al);
		sa->known |= (uint8_t)(1u << w);
	}
}

/* Swap each proxied fd for a FIFO (and back, with undo). */
static int swap_fds(pid_t pid, uint32_t id, uid_t uid, gid_t gid, struct prox *px, size_t n, bool undo,
		    char *err, size_t errlen)
{
	struct ckpt_inj *j;
	int r = attach(pid, &j, err, errlen);
	if (r < 0)
		return r;
	long scratch = ckpt_inj_call(j, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scratch < 0 && scratch > -4096) {
		snprintf(err, errlen, "process %d: scratch page: %s", pid, strerror((int)-scratch));
		ckpt_inj_detach(j);
		return (int)scratch;
	}
	r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		long v;
		if (undo) {
			if (px[i].tty && px[i].tpath[0] && ckpt_inj_poke(j, (uint64_t)scratch, px[i].tpath, strlen(px[i].tpath) + 1) == 0) {
				long k = ckpt_inj_call(j, SYS_openat, AT_FDCWD, scratch, px[i].oflags | O_NOCTTY, 0, 0, 0);
				if (k >= 0) {
					ckpt_inj_call(j, SYS_dup3, k, px[i].num, px[i].cloexec ? O_CLOEXEC : 0, 0, 0, 0);
					ckpt_inj_call(j, SYS_close, k, 0, 0, 0, 0, 0);
				}
				continue;
			}
			if (px[i].keep < 0)
				continue;
			v = ckpt_inj_call(j, SYS_dup3, px[i].keep, px[i].num, px[i].cloexec ? O_CLOEXEC : 0, 0, 0, 0);
			ckpt_inj_call(j, SYS_close, px[i].keep, 0, 0, 0, 0, 0);
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
		int pfd = (int)syscall(SYS_pidfd_open, ckpt_inj_tid(j), ckpt_inj_tid(j) == pid ? 0 : O_EXCL /* PIDFD_THREAD */);
		int dup = pfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pfd, px[i].num, 0);
		struct winsize ws;
		px[i].wslave = -1;
		if (dup >= 0 && isatty(dup)) {
			px[i].tty = true;
			if (ioctl(dup, TIOCGWINSZ, &ws) == 0)
				px[i].rows = ws.ws_row, px[i].cols = ws.ws_col;
			px[i].wslave = dup;
			fcntl(dup, F_SETFD, FD_CLOEXEC);
		} else if (dup >= 0) {
			int t = 0;
			socklen_t tl = sizeof(t);
			if (getsockopt(dup, SOL_SOCKET, SO_TYPE, &t, &tl) == 0 &&
			    (t == SOCK_STREAM || t == SOCK_DGRAM || t == SOCK_SEQPACKET))
				px[i].stype = t;
			if (px[i].stype)
				sock_answers(dup, &px[i].sa);
			close(dup);
		}
		if (pfd >= 0)
			close(pfd);
		px[i].cloexec = fl & O_CLOEXEC;
		px[i].oflags = fl & ~O_CLOEXEC & ~O_CREAT & ~O_EXCL & ~O_TRUNC;
		if (px[i].tty) {
			char lp[64];
			snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", ckpt_inj_tid(j), px[i].num);
			ssize_t ln = readlink(lp, px[i].tpath, sizeof(px[i].tpath) - 1);
			px[i].tpath[ln > 0 ? ln : 0] = 0;
		}
		char path[128];
		snprintf(path, sizeof(path), "%s/%u/fd%d", MIG_FIFO_DIR, id, px[i].num);
		unlink(path);
		if (mkfifo(path, 0600) < 0 || chown(path, uid, gid) < 0) {
			r = -errno;
			break;
		}
		px[i].hold = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (!px[i].tty || !px[i].tpath[0]) {
			v = ckpt_inj_call(j, SYS_fcntl, px[i].num, F_DUPFD, 1000, 0, 0, 0);
			if (v < 0) {
				r = (int)v;
				break;
			}
			px[i].keep = (int)v;
		}
		if ((r = ckpt_inj_poke(j, (uint64_t)scratch, path, strlen(path) + 1)) < 0)
			break;
		int of = (px[i].reads ? O_RDONLY : O_WRONLY) | (fl & (O_NONBLOCK | O_APPEND));
		v = ckpt_inj_call(j, SYS_openat, AT_FDCWD, scratch, of, 0, 0, 0);
		if (v < 0) {
			r = (int)v;
			break;
		}
		long d = ckpt_inj_call(j, SYS_dup3, v, px[i].num, px[i].cloexec ? O_CLOEXEC : 0, 0, 0, 0);
		ckpt_inj_call(j, SYS_close, v, 0, 0, 0, 0, 0);
		if (d < 0) {
			r = (int)d;
			break;
		}
	}
	ckpt_inj_call(j, SYS_munmap, scratch, 4096, 0, 0, 0, 0);
	ckpt_inj_detach(j);
	if (r < 0)
		snprintf(err, errlen, "process %d: setting up its proxied fds: %s", pid, strerror(-r));
	return r;
}

int mig_fd_install(pid_t pid, int num, int fd, uid_t uid, gid_t gid, const char *sockpath)
{
	int fl = fd_flags(pid, num);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sockpath) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sockpath);
	unlink(sockpath);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	/* Only the migrant's user may connect (and we check it is the migrant). */
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chown(sockpath, uid, gid) < 0 || chmod(sockpath, 0600) < 0 ||
	    listen(l, 1) < 0) {
		int e = -errno;
		close(l);
		unlink(sockpath);
		return e;
	}
	struct ckpt_inj *j;
	int r = ckpt_inj_attach(&j, pid);
	long scratch = r < 0 ? r : ckpt_inj_call(j, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scratch < 0 && scratch > -4096) {
		ckpt_inj_detach(j);
		close(l);
		unlink(sockpath);
		return (int)scratch;
	}
	/* scratch: the address, then at +256 one byte of data, at +512 the
	 * control buffer, at +1024 the msghdr and its iovec. */
	uint64_t at = (uint64_t)scratch;
	long s = -1, k = -1;
	int c = -1;
	r = ckpt_inj_poke(j, at, &sa, sizeof(sa));
	if (r == 0 && (s = ckpt_inj_call(j, SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0, 0)) < 0)
		r = (int)s;
	long v = r < 0 ? r : ckpt_inj_call(j, SYS_connect, s, (long)at, sizeof(sa), 0, 0, 0);
	if (r == 0 && v < 0)
		r = (int)v;
	struct ucred cr;
	socklen_t crl = sizeof(cr);
	if (r == 0 && ((c = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
		       getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 || cr.pid != pid))
		r = -EPERM;
	if (r == 0) {
		union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
		r = krg_fd_send(c, "f", 1, fd, MSG_NOSIGNAL);
		/* The same msghdr in the migrant, pointing into scratch. */
		struct iovec riov = { (void *)(uintptr_t)(at + 256), 1 };
		struct msghdr rm = { .msg_iov = (void *)(uintptr_t)(at + 1024 + 64), .msg_iovlen = 1,
				     .msg_control = (void *)(uintptr_t)(at + 512), .msg_controllen = sizeof(cm.b) };
		if (r == 0 && ((r = ckpt_inj_poke(j, at + 1024, &rm, sizeof(rm))) < 0 || (r = ckpt_inj_poke(j, at + 1024 + 64, &riov, sizeof(riov))) < 0))
			r = -EIO;
		if (r == 0 && (v = ckpt_inj_call(j, SYS_recvmsg, s, (long)(at + 1024), MSG_CMSG_CLOEXEC, 0, 0, 0)) != 1)
			r = v < 0 ? (int)v : -EIO;
		struct iovec li = { cm.b, sizeof(cm.b) }, ri = { (void *)(uintptr_t)(at + 512), sizeof(cm.b) };
		if (r == 0 && process_vm_readv(pid, &li, 1, &ri, 1, 0) != (ssize_t)sizeof(cm.b))
			r = -EIO;
		struct cmsghdr *ch = (struct cmsghdr *)cm.b;
		if (r == 0 && (ch->cmsg_type != SCM_RIGHTS || ch->cmsg_len != CMSG_LEN(sizeof(int))))
			r = -EIO;
		int got = -1;
		if (r == 0)
			memcpy(&got, CMSG_DATA(ch), sizeof(int));
		k = got;
	}
	if (r == 0 && (v = ckpt_inj_call(j, SYS_dup3, k, num, fl > 0 && (fl & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0)) < 0)
		r = (int)v;
	if (r == 0 && fl > 0 && (fl & O_NONBLOCK))
		ckpt_inj_call(j, SYS_fcntl, num, F_SETFL, O_NONBLOCK, 0, 0, 0);
	if (k >= 0)
		ckpt_inj_call(j, SYS_close, k, 0, 0, 0, 0, 0);
	if (s >= 0)
		ckpt_inj_call(j, SYS_close, s, 0, 0, 0, 0, 0);
	ckpt_inj_call(j, SYS_munmap, scratch, 4096, 0, 0, 0, 0);
	ckpt_inj_detach(j);
	if (c >= 0)
		close(c);
	close(l);
	unlink(sockpath);
	return r;
}

int mig_fd_replace(pid_t pid, const int *nums, size_t n, const char *path)
{
	struct ckpt_inj *j;
	int r = ckpt_inj_attach(&j, pid);
	if (r < 0) {
		ckpt_inj_detach(j);
		return r;
	}
	long scratch = ckpt_inj_call(j, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scratch < 0 && scratch > -4096) {
		ckpt_inj_detach(j);
		return (int)scratch;
	}
	r = ckpt_inj_poke(j, (uint64_t)scratch, path, strlen(path) + 1);
	for (size_t i = 0; i < n && r == 0; i++) {
		int fl = fd_flags(pid, nums[i]);
		long k = ckpt_inj_call(j, SYS_openat, AT_FDCWD, scratch, O_RDWR | O_NOCTTY | (fl > 0 ? fl & O_NONBLOCK : 0), 0, 0, 0);
		if (k < 0) {
			r = (int)k;
			break;
		}
		long d = ckpt_inj_call(j, SYS_dup3, k, nums[i], fl > 0 && (fl & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0);
		ckpt_inj_call(j, SYS_close, k, 0, 0, 0, 0, 0);
		if (d < 0)
			r = (int)d;
	}
	ckpt_inj_call(j, SYS_munmap, scratch, 4096, 0, 0, 0, 0);
	ckpt_inj_detach(j);
	return r;
}

/* Turn the process into the deputy: execve injected into its leader. */
static int become_deputy(pid_t pid, char *const *argv, char *err, size_t errlen)
{
	struct ckpt_inj *j;
	int r = attach(pid, &j, err, errlen);
	if (r < 0)
		return r;
	/* argv strings then the pointer array, in a fresh mapping. */
	size_t argc = 0, slen = 0;
	while (argv[argc])
		slen += strlen(argv[argc++]) + 1;
	size_t len = ((slen + (argc + 1) * 8 + 64) + 4095) & ~4095UL;
	long m = ckpt_inj_call(j, SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m < 0 && m > -4096) {
		ckpt_inj_detach(j);
		snprintf(err, errlen, "process %d: mmap: %s", pid, strerror((int)-m));
		return (int)m;
	}
	uint8_t *buf = calloc(1, len);
	if (!buf) {
		ckpt_inj_detach(j);
		return -ENOMEM;
	}
	uint64_t *ptrs = (uint64_t *)buf, path_at = (uint64_t)m + (argc + 1) * 8;
	size_t off = (argc + 1) * 8;
	for (size_t i = 0; i < argc; i++) {
		ptrs[i] = (uint64_t)m + off;
		memcpy(buf + off, argv[i], strlen(argv[i]) + 1);
		off += strlen(argv[i]) + 1;
	}
	r = ckpt_inj_poke(j, (uint64_t)m, buf, len);
	free(buf);
	/* The deputy starts with every signal blocked (it takes them with a
	 * signalfd) and no interval timer (those survive exec: the migrant
	 * has its own). A zero itimerval and a full mask, after the strings. */
	uint8_t tail[64];
	memset(tail, 0, 32);
	memset(tail + 32, 0xff, 8);
	uint64_t tail_at = (uint64_t)m + len - sizeof(tail);
	if (r == 0 && len - (argc + 1) * 8 - slen >= sizeof(tail) && ckpt_inj_poke(j, tail_at, tail, sizeof(tail)) == 0) {
		ckpt_inj_call(j, SYS_rt_sigprocmask, SIG_SETMASK, (long)(tail_at + 32), 0, 8, 0, 0);
		for (int which = 0; which < 3; which++)
			ckpt_inj_call(j, SYS_setitimer, which, (long)tail_at, 0, 0, 0, 0);
	}
	long v = r < 0 ? r : ckpt_inj_call(j, SYS_execve, (long)path_at, m, 0, (long)KRG_INTERCEPT_EXEC_PASS, 0, 0);
	if (!ckpt_inj_execed(j)) {
		ckpt_inj_call(j, SYS_munmap, m, (long)len, 0, 0, 0, 0);
		ckpt_inj_detach(j);
		snprintf(err, errlen, "process %d: exec of %s: %s", pid, argv[0], strerror(v < 0 ? (int)-v : EIO));
		return v < 0 ? (int)v : -EIO;
	}
	ckpt_inj_detach(j);
	return 0;
}

/* Every terminal of px open again in the deputy (at 1000 or above). */
static bool deputy_has_ttys(pid_t pid, const struct prox *px, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!px[i].tty || !px[i].tpath[0])
			continue;
		bool found = false;
		for (int fd = 1000; fd < 1000 + 3 * MIG_MAX_PROXIES && !found; fd++) {
			char lp[64], l[128];
			snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", pid, fd);
			ssize_t k = readlink(lp, l, sizeof(l) - 1);
			if (k > 0) {
				l[k] = 0;
				found = !strcmp(l, px[i].tpath);
			}
		}
		if (!found)
			return kill(pid, 0) < 0; /* gone: nothing to wait for */
	}
	return true;
}

/* The fds passed (SCM_RIGHTS) in the messages waiting in unix socket
 * fd's receive queue: fdinfo's scm_fds (Linux 6.0; 0 on an older
 * kernel, which does not say). */
static long scm_fds_queued(pid_t pid, int fd)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", ckpt_live_tid(pid), fd);
	FILE *f = fopen(path, "re");
	long n = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "scm_fds: %ld", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* An fd that stays here and cannot be forwarded to the node the process
 * goes to (docs/migration.md, "Forwarded fds"): a listening socket (its
 * accept() would need the socket itself), one not connected (connect,
 * sendto to an address), a socket of another type (SOCK_RAW, SOCK_RDM...),
 * a unix socket with fds passed to it waiting unread (the pump could not
 * deliver them on the target: the forwarded socket would be shut at both
 * ends, docs/migration.md). true with one line in why naming it. */
static bool unforwardable(pid_t pid, uint32_t id, int fd, char *why, size_t whylen)
{
	char path[64], link[256];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", ckpt_live_tid(pid), fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0 || (link[n] = 0, strncmp(link, "socket:", 7)))
		return false;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int dup = pfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	if (pfd >= 0)
		close(pfd);
	if (dup < 0)
		return false;
	int listening = 0, type = 0, dom = 0;
	socklen_t l1 = sizeof(listening), l2 = sizeof(type), l3 = sizeof(dom);
	getsockopt(dup, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l1);
	getsockopt(dup, SOL_SOCKET, SO_TYPE, &type, &l2);
	getsockopt(dup, SOL_SOCKET, SO_DOMAIN, &dom, &l3);
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	bool unconnected = getpeername(dup, (struct sockaddr *)&peer, &pl) < 0 && errno == ENOTCONN;
	close(dup);
	long passed = 0;
	const char *fam = dom == AF_UNIX ? "unix" : dom == AF_INET ? "TCP/IPv4" : dom == AF_INET6 ? "TCP/IPv6" : "socket";
	if (dom == AF_INET || dom == AF_INET6)
		fam = type == SOCK_DGRAM ? (dom == AF_INET ? "UDP/IPv4" : "UDP/IPv6") : fam;
	if (listening)
		snprintf(why, whylen, "process %u: fd %d (%s %s, listening) stays on this node and cannot be forwarded: "
			 "accept() on it would need the socket itself", id, fd, fam, link);
	else if (unconnected)
		snprintf(why, whylen, "process %u: fd %d (%s %s, not connected) stays on this node and cannot be forwarded: "
			 "connect() or sendto() on it would need the socket itself", id, fd, fam, link);
	else if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET)
		snprintf(why, whylen, "process %u: fd %d (%s %s of type %d) stays on this node and cannot be forwarded",
			 id, fd, fam, link, type);
	else if (dom == AF_UNIX && (passed = scm_fds_queued(pid, fd)) > 0)
		snprintf(why, whylen, "process %u: fd %d (%s %s, %ld fd%s passed to it unread) stays on this node and cannot "
			 "be forwarded: fds passed over a socket (SCM_RIGHTS) cannot cross nodes", id, fd, fam, link, passed,
			 passed == 1 ? "" : "s");
	else
		return false;
	return true;
}

/* The fds the dump refused, to proxy: each must be the process's own
 * (not a copy of ours) and of a kind the deputy can proxy. -1 when any
 * refusal is of another kind, or names another process. */
static int take_refused(const struct ckpt_error *ce, pid_t pid, uint32_t id, struct prox *px, size_t *n, char *why, size_t whylen)
{
	size_t n0 = *n;
	bool refused_ours = false;
	if (!ce->n_refused || ce->refused_more)
		return -1;
	for (size_t k = 0; k < ce->n_refused; k++) {
		const struct ckpt_refusal *rf = &ce->refused[k];
		/* Our own copies of proxied fds are refused too: they are left
		 * out of the image (ignore_unsupported). */
		bool ours = false;
		for (size_t i = 0; i < *n; i++)
			ours |= px[i].keep == rf->fd || px[i].num == rf->fd;
		if (ours) {
			refused_ours = true;
			continue;
		}
		if (rf->pid == pid && why && unforwardable(pid, id, rf->fd, why, whylen))
			return -1;
		if (rf->pid != pid || !proxyable(pid, rf->fd) || *n >= MIG_MAX_PROXIES)
			return -1;
		px[(*n)++] = (struct prox){ .num = rf->fd, .keep = -1, .hold = -1, .wslave = -1 };
	}
	return *n > n0 || refused_ours ? 0 : -1;
}

static bool is_tty_link(pid_t pid, int fd)
{
	char link[256];
	return tty_link(fd_link(pid, fd, link, sizeof(link)));
}

/* Terminals and pipes to other processes are proxied whatever the dump
 * could do with them: a terminal is this node's (a reopen by path
 * elsewhere would be another one), a pipe's other end stays here. A pipe
 * with both ends in the process moves with it. Sockets: as the dump says
 * (one refused is proxied). */
static void find_unmovable(pid_t pid, struct prox *px, size_t *n)
{
	char path[64], link[128];
	struct { int fd; unsigned long ino; int acc; } pipes[256];
	size_t np = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", ckpt_live_tid(pid));
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (is_tty_link(pid, fd)) {
			if (*n < MIG_MAX_PROXIES)
				px[(*n)++] = (struct prox){ .num = fd, .keep = -1, .hold = -1, .wslave = -1 };
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", ckpt_live_tid(pid), fd);
		ssize_t k = readlink(path, link, sizeof(link) - 1);
		unsigned long ino;
		if (k > 0 && (link[k] = 0, sscanf(link, "pipe:[%lu]", &ino) == 1) && np < 256) {
			int fl = fd_flags(pid, fd);
			pipes[np].fd = fd;
			pipes[np].ino = ino;
			pipes[np++].acc = fl < 0 ? O_RDWR : fl & O_ACCMODE;
		}
	}
	closedir(d);
	for (size_t i = 0; i < np; i++) {
		bool r = false, w = false;
		for (size_t j = 0; j < np; j++)
			if (pipes[j].ino == pipes[i].ino) {
				r |= pipes[j].acc != O_WRONLY;
				w |= pipes[j].acc != O_RDONLY;
			}
		if (!(r && w) && *n < MIG_MAX_PROXIES)
			px[(*n)++] = (struct prox){ .num = pipes[i].fd, .keep = -1, .hold = -1, .wslave = -1 };
	}
}

/* Pre-copy (docs/migration.md): rounds while the process runs, each
 * waiting for krgd to have sent what it copied, until what a round finds
 * written is small or stops shrinking. */
#define PRECOPY_MIN (16ULL << 20)      /* less memory than this: plain stop-and-copy */
#define PRECOPY_SMALL (2ULL << 20)     /* a round this small: freeze now */
#define PRECOPY_MAX_ROUNDS 8
#define PRECOPY_WAIT_MS 60000          /* krgd not answering: freeze anyway, the dump sends the rest */

/* A userfaultfd of the process's own mm (made by an injected syscall,
 * taken with pidfd_getfd, its fd in the process closed again). */
static int make_uffd(pid_t pid)
{
	struct ckpt_inj *j;
	int r = ckpt_inj_attach(&j, pid);
	if (r < 0) {
		ckpt_inj_detach(j);
		return r;
	}
	/* It is running: every signal stays pending while we are in it (a
	 * signal taken during an injection would be held back and sent
	 * again without its queued value). */
	uint64_t mask, all = ~0ULL;
	if (ptrace(PTRACE_GETSIGMASK, ckpt_inj_tid(j), (void *)sizeof(mask), &mask) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, ckpt_inj_tid(j), (void *)sizeof(all), &all) < 0) {
		r = -errno;
		ckpt_inj_detach(j);
		return r;
	}
	long tfd = ckpt_inj_call(j, SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */, 0, 0, 0, 0, 0);
	if (tfd == -EINVAL)  /* before 5.11: no user-mode-only flag */
		tfd = ckpt_inj_call(j, SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0, 0);
	int fd = (int)tfd;
	if (tfd >= 0) {
		int pfd = (int)syscall(SYS_pidfd_open, ckpt_inj_tid(j), ckpt_inj_tid(j) == pid ? 0 : O_EXCL /* PIDFD_THREAD */);
		fd = pfd < 0 ? -errno : (int)syscall(SYS_pidfd_getfd, pfd, (int)tfd, 0);
		if (fd < 0)
			fd = -errno;
		if (pfd >= 0)
			close(pfd);
		ckpt_inj_call(j, SYS_close, tfd, 0, 0, 0, 0, 0);
	}
	ptrace(PTRACE_SETSIGMASK, ckpt_inj_tid(j), (void *)sizeof(mask), &mask);
	ckpt_inj_detach(j);
	return fd;
}

/* The copier handed to the pre-copy: krgd reads the range. */
static int copy_by_krgd(void *ctx, uint64_t addr, uint64_t len, uint64_t off)
{
	struct mig_copy c = { .addr = addr, .len = len, .off = off };
	return mig_send(*(int *)ctx, MF_COPY, 0, 0, &c, sizeof(c));
}

/* An MF_COPIED from krgd: what it read of a range, for the pre-copy's
 * tables. */
static void copied(struct ckpt_precopy *pc, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	if (!pc || len < 8 || (len - 8) % 9)
		return;
	size_t n = (len - 8) / 9;
	uint64_t off, sums[1024];
	if (n > 1024)
		return;
	memcpy(&off, data, 8);
	memcpy(sums, data + 8, n * 8);
	ckpt_precopy_copied(pc, (uint64_t)h->arg, off, n, sums, data + 8 + n * 8);
}

/* What krgd says while we pre-copy: 1 = sent, 0 = go on without waiting
 * (timeout), -1 = abort (or krgd gone). Reports of pages it copied
 * (MF_COPIED) come first and are taken in. */
static int wait_sent(int sock, struct ckpt_precopy *pc)
{
	for (;;) {
		struct pollfd p = { sock, POLLIN, 0 };
		int k;
		do
			k = poll(&p, 1, PRECOPY_WAIT_MS);
		while (k < 0 && errno == EINTR);
		if (k == 0)
			return 0;
		static uint8_t buf[sizeof(struct mig_hdr) + 16384];
		ssize_t n;
		do
			n = recv(sock, buf, sizeof(buf), 0);
		while (n < 0 && errno == EINTR);
		struct mig_hdr h = { 0 };
		if (n < (ssize_t)sizeof(h))
			return -1;
		memcpy(&h, buf, sizeof(h));
		if (h.type == MF_COPIED) {
			copied(pc, &h, buf + sizeof(h), (size_t)n - sizeof(h));
			continue;
		}
		return h.type == MF_SENT ? 1 : -1;
	}
}

/* Pre-copy rounds; returns the pre-copy to hand to the dump (NULL: none,
 * stop-and-copy). *aborted: krgd gave up meanwhile. */
static struct ckpt_precopy *precopy(int sock, const struct mig_work *w, bool *aborted)
{
	struct ckpt_error ce = { 0 };
	struct ckpt_precopy *pc = NULL;
	*aborted = false;
	uint64_t size = 0;
	if (krg_fault_on("mig-no-precopy")) {  /* for comparisons (bench/migrate) */
		sendf(sock, MF_PRECOPY, "fault point mig-no-precopy is set");
		return NULL;
	}
	/* Small: not worth stopping it to make the userfaultfd. A failure
	 * to measure is said (stop-and-copy then), never silent. */
	if (ckpt_precopy_size(w->pid, &size, &ce) < 0) {
		sendf(sock, MF_PRECOPY, "%s", ce.msg);
		return NULL;
	}
	if (size < PRECOPY_MIN)
		return NULL;
	int uffd = make_uffd(w->pid);
	int r = uffd < 0 ? uffd : ckpt_precopy_start(w->pid, uffd, w->dir, &pc, &ce);
	if (r < 0) {
		sendf(sock, MF_PRECOPY, "%s", uffd < 0 ? strerror(-uffd) : ce.msg);
		return NULL;
	}
	if (ckpt_precopy_tracked(pc) < PRECOPY_MIN) {
		ckpt_precopy_free(pc);
		return NULL;
	}
	static int copy_sock;
	copy_sock = sock;
	if (!krg_fault_on("mig-precopy-file"))  /* for comparisons: copy into the file here, as before */
		ckpt_precopy_set_copier(pc, copy_by_krgd, &copy_sock);
	uint64_t prev = UINT64_MAX, total = 0;
	for (int round = 1;; round++) {
		uint64_t bytes;
		if ((r = ckpt_precopy_round(pc, &bytes, &ce)) < 0) {
			/* What was copied is dropped (the transfer notices the file
			 * went): the dump copies it all. */
			ckpt_precopy_free(pc);
			sendf(sock, MF_PRECOPY, "round %d: %s", round, ce.msg);
			return NULL;
		}
		mig_send(sock, MF_PRECOPY, round, (int64_t)ckpt_precopy_file_size(pc), NULL, 0);
		int k = wait_sent(sock, pc);
		if (k < 0) {
			ckpt_precopy_free(pc);
			*aborted = true;
			return NULL;
		}
		/* The first round copies everything: always one more. The
		 * file (tmpfs, here and on the target) stops at about three
		 * times the memory, however slowly the rounds shrink. */
		total += bytes;
		if (round > 1 && (bytes <= PRECOPY_SMALL || bytes * 4 > prev * 3 || total > 2 * ckpt_precopy_tracked(pc)))
			break;
		if (round >= PRECOPY_MAX_ROUNDS || k == 0)
			break;
		prev = bytes;
	}
	return pc;
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

void mig_child_signals(void)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The worker's state (one worker a process: static). */
static struct worker {
	int sock;                        /* to krgd */
	const struct mig_work *w;
	pid_t pid;
	char err[3000];
	struct prox px[MIG_MAX_PROXIES]; /* its proxied fds */
	size_t np;
	char fifodir[128];
	struct ckpt_precopy *pc;
	unsigned long long carried;      /* signals pending at the freeze: in the image */
} W;

/* One line to krgd and the end. */
static _Noreturn void worker_fail(const char *msg)
{
	sendf(W.sock, MF_ERR, "%s", msg);
	_exit(0);
}

/* Its proxied fds swapped for FIFOs (undo: back), their directory made. */
static int worker_swap(size_t from, bool undo, char *err, size_t errlen)
{
	const struct mig_work *w = W.w;
	if (!undo) {
		mkdir(MIG_FIFO_DIR, 0755);
		mkdir(W.fifodir, 0755);
	}
	return swap_fds(W.pid, w->id, w->uid, w->gid, W.px + from, W.np - from, undo, err, errlen);
}

/* The dump of the frozen process: the fds that cannot move proxied
 * first, those the dump refuses proxied then and the dump made again;
 * its file locks released for the target. 0, or -errno with W.err. */
static int worker_dump(bool was_stopped)
{
	const struct mig_work *w = W.w;
	struct ckpt_error ce = { 0 };
	struct ckpt_dump_opts o = { .process_only = true, .precopy = W.pc, .has_root_pidfd = w->pidfd >= 0,
				    .root_pidfd = w->pidfd, .root_stopped_by_caller = !was_stopped,
				    /* its System V segments of the DSM follow it: attached
				     * again on the target, pages on demand (docs/dsm.md) */
				    .dsm_follow = true };
	find_unmovable(W.pid, W.px, &W.np);
	int r = W.np ? worker_swap(0, false, W.err, sizeof(W.err)) : 0;
	if (r == 0 && (r = ckpt_dump(W.pid, w->dir, &o, &ce)) < 0) {
		size_t n0 = W.np;
		char why[512] = "";
		if (take_refused(&ce, W.pid, w->id, W.px, &W.np, why, sizeof(why)) < 0) {
			snprintf(W.err, sizeof(W.err), "%s", why[0] ? why : ce.msg);
		} else if ((r = worker_swap(n0, false, W.err, sizeof(W.err))) == 0) {
			memset(&ce, 0, sizeof(ce));
			o.ignore_unsupported = true;
			if ((r = ckpt_dump(W.pid, w->dir, &o, &ce)) < 0)
				snprintf(W.err, sizeof(W.err), "%s", ce.msg);
		}
	}
	/* Its file locks go with it: released here (it is stopped) so the
	 * target can take them; taken back if the migration fails. */
	if (r == 0 && (r = ckpt_app_locks(W.pid, w->dir, false, &ce)) < 0)
		snprintf(W.err, sizeof(W.err), "%s", ce.msg);
	return r;
}

static void close_holds(void)
{
	for (size_t i = 0; i < W.np; i++)
		if (W.px[i].hold >= 0)
			close(W.px[i].hold);
}

static void rm_fifodir(void)
{
	if (!W.w->migrant_here)
		mig_rm_rf(W.fifodir); /* else the holder's, removed when it exits */
}

/* The dump failed: it runs on here as it was. */
static _Noreturn void worker_undo_dump(void)
{
	char e2[256];
	/* The write-protection goes before it runs on here. */
	ckpt_precopy_free(W.pc);
	if (W.np)
		worker_swap(0, true, e2, sizeof(e2));
	close_holds();
	rm_fifodir();
	mig_rm_rf(W.w->dir);
	kill(W.pid, SIGCONT);
	worker_fail(W.err);
}

/* MF_DUMPED's text: each proxied fd as num:keep:r|w:kind:ROWSxCOLS. */
static void worker_spec(char *spec, size_t len)
{
	size_t sl = 0;
	spec[0] = 0;
	for (size_t i = 0; i < W.np; i++) {
		const struct prox *x = &W.px[i];
		char kind[8];
		snprintf(kind, sizeof(kind), "%s", x->tty ? "tty" : "-");
		if (x->stype && !x->tty)
			snprintf(kind, sizeof(kind), "s%d", x->stype);
		sl += (size_t)snprintf(spec + sl, len - sl, "%s%d:%d:%c:%s:%ux%u", i ? " " : "", x->num, x->keep,
				       x->reads ? 'r' : 'w', kind, x->rows, x->cols);
	}
}

/* krgd's verdict (late reports of pre-copied pages: too late). Its
 * header, the frame in buf (n bytes). */
static struct mig_hdr worker_verdict(uint8_t *buf, size_t size, ssize_t *n)
{
	struct mig_hdr h = { 0 };
	do {
		do
			*n = recv(W.sock, buf, size - 1, 0);
		while (*n < 0 && errno == EINTR);
		memset(&h, 0, sizeof(h));
		if (*n >= (ssize_t)sizeof(h))
			memcpy(&h, buf, sizeof(h));
	} while (h.type == MF_COPIED);
	return h;
}

/* Committed, with a deputy: the original becomes it (argv from krgd,
 * NUL-separated, the proxies appended). */
static _Noreturn void worker_to_deputy(uint8_t *buf, ssize_t n)
{
	buf[n] = 0;
	char *argv[8 + MIG_MAX_PROXIES];
	size_t ac = 0;
	for (char *p = (char *)buf + sizeof(struct mig_hdr); p < (char *)buf + n && ac < 7; p += strlen(p) + 1)
		argv[ac++] = p;
	char cs[64];
	snprintf(cs, sizeof(cs), "-c%llx:%d", W.carried, (int)getpid());
	if (ac == 5)
		argv[ac++] = cs;
	char ps[MIG_MAX_PROXIES][120];
	for (size_t i = 0; i < W.np; i++) {
		const struct prox *x = &W.px[i];
		if (x->keep < 0 && x->tty)
			snprintf(ps[i], sizeof(ps[i]), "%d:@%s:%c:tty", x->num, x->tpath, x->reads ? 'r' : 'w');
		else
			snprintf(ps[i], sizeof(ps[i]), "%d:%d:%c:%s%.0d", x->num, x->keep, x->reads ? 'r' : 'w',
				 x->tty ? "tty" : x->stype ? "s" : "-", x->tty ? 0 : x->stype);
		argv[ac++] = ps[i];
	}
	argv[ac] = NULL;
	int r = ac >= 5 ? become_deputy(W.pid, argv, W.err, sizeof(W.err)) : -EINVAL;
	/* Only now (its old memory is gone with the exec, or goes with the
	 * kill): dropping the write-protection of a large area takes a
	 * while, which the frozen time need not include. */
	ckpt_precopy_free(W.pc);
	rm_fifodir();
	if (r < 0) {
		/* The migrant runs elsewhere already: this copy must go. */
		kill(W.pid, SIGKILL);
		worker_fail(W.err);
	}
	kill(W.pid, SIGCONT);
	/* Its terminals: held until the deputy has them open again. */
	for (int t = 0; t < 3000 && !deputy_has_ttys(W.pid, W.px, W.np); t++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	mig_send(W.sock, MF_DONE, 0, 0, NULL, 0);
	_exit(0);
}

/* Abort, or krgd went away: it goes on here, with its locks and without
 * the write-protection. */
static _Noreturn void worker_abort(void)
{
	const struct mig_work *w = W.w;
	ckpt_precopy_free(W.pc);
	struct ckpt_error le = { 0 };
	if (ckpt_app_locks(W.pid, w->dir, true, &le) < 0)
		fprintf(stderr, "krgd migrate worker: process %u keeps running without some file locks: %s\n", w->id, le.msg);
	if (W.np) {
		worker_swap(0, true, W.err, sizeof(W.err));
		rm_fifodir();
	}
	kill(W.pid, SIGCONT);
	mig_send(W.sock, MF_DONE, 0, 0, NULL, 0);
	_exit(0);
}

_Noreturn void mig_worker_main(int sock, const struct mig_work *w)
{
	mig_child_signals();
	W.sock = sock;
	W.w = w;
	W.pid = w->pid;
	snprintf(W.fifodir, sizeof(W.fifodir), "%s/%u", MIG_FIFO_DIR, w->id);
	pid_t pid = W.pid;

	/* Before anything touches it: memory it shares with a process
	 * staying here would be split in two. */
	if (mig_shared_mem_check(pid, w->id, w->node, W.err, sizeof(W.err)) < 0) {
		mig_rm_rf(w->dir);
		worker_fail(W.err);
	}
	for (int i = 0; w->wait_read_fd >= 0 && i < 10000 && !in_read(pid, w->wait_read_fd); i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	bool aborted;
	W.pc = precopy(sock, w, &aborted);
	if (aborted) {
		mig_rm_rf(w->dir);
		mig_send(sock, MF_DONE, 0, 0, NULL, 0);
		_exit(0);
	}
	/* Stopped already (job control): then the stop is the process's own
	 * and travels with it; otherwise the SIGSTOP below is ours alone.
	 * A stop at exec by the scheduler (placement) is krgd's, not its own. */
	bool held = krg_sched_exec_held(pid) && all_stopped(pid);
	bool was_stopped = all_stopped(pid) && !held;
	/* Held: stopped already, and a second SIGSTOP would stay pending and
	 * travel with the image (the migrant would stop again there). */
	int r = held ? 0 : freeze(pid);
	if (r < 0) {
		ckpt_precopy_free(W.pc);
		mig_rm_rf(w->dir); /* what a pre-copy wrote */
		kill(pid, SIGCONT);
		sendf(sock, MF_ERR, "process %u: cannot freeze it: %s", w->id, strerror(-r));
		_exit(0);
	}
	mig_send(sock, MF_FROZEN, 0, 0, NULL, 0);
	/* What is pending now goes with the image; what comes while it is
	 * frozen from here on stays pending on the original: its deputy (or,
	 * for a migrant here, home after mig.where) sends the other kinds on.
	 * A signal sent during the dump may be in the image too: it then
	 * arrives twice rather than never. */
	W.carried = mig_pending_of(pid);
	if (worker_dump(was_stopped) < 0)
		worker_undo_dump();
	chown_dir(w->dir, w->uid, w->gid);
	test_hold(w->id);
	char spec[2048];
	worker_spec(spec, sizeof(spec));
	for (size_t i = 0; i < W.np; i++)
		for (int w = 0; W.px[i].stype && !W.px[i].tty && w < MIG_SA_N; w++)
			if (W.px[i].sa.known & (1u << w))
				mig_send(sock, MF_SOCKADDR, W.px[i].num, w | (W.px[i].sa.len[w] < 0 ? -W.px[i].sa.len[w] << 3 : 0),
					 W.px[i].sa.a[w], W.px[i].sa.len[w] > 0 ? (size_t)W.px[i].sa.len[w] : 0);
	mig_send(sock, MF_DUMPED, 0, (int64_t)W.carried, spec, strlen(spec));

	static uint8_t buf[sizeof(struct mig_hdr) + 16384];
	ssize_t n;
	struct mig_hdr h = worker_verdict(buf, sizeof(buf), &n);
	close_holds();
	if (h.type == MF_COMMIT && h.arg == 1)
		worker_to_deputy(buf, n);
	if (h.type != MF_COMMIT)
		worker_abort();
	kill(pid, SIGKILL);
	ckpt_precopy_free(W.pc);
	mig_send(sock, MF_DONE, 0, 0, NULL, 0);
	_exit(0);
}
