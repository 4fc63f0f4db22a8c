/* krg-deputy — what a migrated process becomes at home (mig-int.h).
 *
 * The migration worker exec's the frozen original into this program, so
 * the deputy *is* the original process: same pid, same parent, same
 * process group and session, and the real fds that could not move (a
 * terminal, pipes to local processes, sockets), which it keeps at the
 * numbers given on the command line. It
 *   - forwards every signal it gets to the migrant (through krgd),
 *     those sent while the process was frozen for its migration too (not
 *     the ones pending at the dump: the image carried them);
 *   - the children the process had stay here as the deputy's: it reaps
 *     them and sends each wait status to krgd, which gives it to the
 *     child's ghost where the migrant runs (ghost.c), and it sends them
 *     the signals the migrant sends their ghosts;
 *   - pumps the proxied fds: reads those the migrant reads and sends the
 *     data, writes what the migrant wrote;
 *   - dies with the migrant's exit status or signal, so its parent's
 *     waitpid() sees exactly what the migrant did.
 * Usage (by the worker only): krg-deputy SOCKET ID TOKEN COMM [-cMASK:WORKER] [NUM:FD:r|w]...
 * MASK (hex, bit s-1 for signal s): signals pending at the dump; WORKER:
 * the worker's pid (its SIGCONT, which lets the deputy start, is no news). 
 * It is not meant to be run by hand: without its krgd it exits with 255. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "proc/migrate/mig-int.h"

static bool kept(const struct mig_pump *p, int fd)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->p[i].fd == fd)
			return true;
	return false;
}

/* A signal from a timer of the original that fired while it was frozen
 * (its interval timers and POSIX timers are the migrant's now): POSIX
 * timer ticks, and what the kernel sends for the timers it deleted at
 * exec (SI_KERNEL: SIGALRM, SIGVTALRM, SIGPROF, real-time signals). A
 * terminal's SIGINT & co. are SI_KERNEL too, and go on. */
static bool original_timer(const struct signalfd_siginfo *si)
{
	if (si->ssi_code == SI_TIMER)
		return true;
	return si->ssi_code == SI_KERNEL && (si->ssi_signo == SIGALRM || si->ssi_signo == SIGVTALRM ||
					     si->ssi_signo == SIGPROF || (int)si->ssi_signo >= SIGRTMIN);
}

/* Reap every child that ended; its wait status goes to krgd (for its
 * ghost); it leaves the list of children that may be signalled. */
static void reap_kids(int sock, pid_t *kids, size_t *nk)
{
	int st;
	pid_t c;
	while ((c = waitpid(-1, &st, WNOHANG)) > 0) {
		mig_send(sock, MF_KID_EXIT, c, st, NULL, 0);
		for (size_t i = 0; i < *nk; i++)
			if (kids[i] == c) {
				kids[i] = kids[--*nk];
				break;
			}
	}
}

/* The deputy's state (one a process). */
static struct deputy {
	struct mig_pump p;
	int tty;                     /* a proxied terminal: its size follows SIGWINCH */
	int sock, sfd;               /* to krgd; the signalfd of every signal */
	pid_t worker;                /* its SIGCONT lets us start */
	pid_t kids[MIG_MAX_KIDS];    /* children it had, not reaped yet */
	size_t nk;
	uint8_t buf[sizeof(struct mig_hdr) + MIG_CHUNK + 64];
	/* Handed over (MF_BECOME answered): the process is being restored
	 * into us; nothing is read but krgd's socket (MF_RESUME if that
	 * failed before it began), signals stay pending for the process,
	 * ended children stay zombies for its wait(). */
	bool handed;
} D = { .tty = -1, .sock = -1, .sfd = -1 };

/* Signals pending now came while it was frozen: those pending at the dump
 * went with the image (every queued one of those kinds is dropped here: a
 * later one of the same kind merges into it, as a standard signal would
 * have there); the others are the migrant's and go through the signalfd. */
static void drop_carried(unsigned long long carried)
{
	for (int s = 1; s <= 64; s++) {
		if (!(carried & (1ULL << (s - 1))))
			continue;
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, s);
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&one, NULL, &zero) == s)
			;
	}
}

/* One proxy argument, NUM:KEEP:r|w:KIND or NUM:@PATH:r|w:tty, into the
 * pump. */
static void add_proxy(const char *arg)
{
	struct mig_pump *p = &D.p;
	int num, fd;
	char dir, path[100];
	if (sscanf(arg, "%d:@%99[^:]:%c", &num, path, &dir) == 3) {
		/* A terminal, reopened by path (same terminal, another open). */
		fd = open(path, (dir == 'r' ? O_RDONLY : O_WRONLY) | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return;
		if (fd < 1000) {
			int f2 = fcntl(fd, F_DUPFD_CLOEXEC, 1000);
			close(fd);
			fd = f2;
		}
	} else if (sscanf(arg, "%d:%d:%c", &num, &fd, &dir) != 3) {
		return;
	}
	bool is_tty = strstr(arg, ":tty") != NULL;
	if (is_tty && D.tty < 0)
		D.tty = fd;
	const char *kind = strrchr(arg, ':');
	int stype = kind && kind[1] == 's' ? atoi(kind + 2) : 0;
	if (stype && p->n + 1 < MIG_MAX_PROXIES) {
		/* A socket: both directions, as two streams (mig-int.h). */
		p->p[p->n++] = (struct mig_pfd){ .num = num, .fd = fd, .src = true, .stype = stype, .exact = true };
		p->p[p->n++] = (struct mig_pfd){ .num = num | MIG_REV, .fd = fcntl(fd, F_DUPFD_CLOEXEC, 1000), .stype = stype,
						 .exact = true };
		return;
	}
	/* The migrant reads it: we read ours and send. */
	p->p[p->n++] = (struct mig_pfd){ .num = num, .fd = fd, .src = dir == 'r', .exact = !is_tty };
}

/* Everything else the original had open is the migrant's now. */
static void close_the_rest(void)
{
	int maxfd = (int)sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	for (int fd = 0; fd < maxfd; fd++)
		if (!kept(&D.p, fd))
			close(fd);
	for (size_t i = 0; i < D.p.n; i++)
		fcntl(D.p.p[i].fd, F_SETFD, FD_CLOEXEC);
	mig_pump_reopen(&D.p);
}

/* Connected to krgd's socket (path), MF_HELLO with the move's id and
 * token (hex) sent. 0 or -1. */
static int say_hello(const char *path, const char *id, const char *hex)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (D.sock < 0 || connect(D.sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	D.p.sock = D.sock;
	uint8_t token[16] = { 0 };
	for (size_t i = 0; i < sizeof(token) && hex[2 * i] && hex[2 * i + 1]; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		token[i] = (uint8_t)v;
	}
	return mig_send(D.sock, MF_HELLO, 0, strtoll(id, NULL, 10), token, sizeof(token)) < 0 ? -1 : 0;
}

/* The children it had (its threads' too, ours now that they are gone):
 * the ones the migrant may signal through their ghosts. */
static void list_kids(void)
{
	char kp[64];
	snprintf(kp, sizeof(kp), "/proc/self/task/%d/children", (int)getpid());
	FILE *kf = fopen(kp, "re");
	int kid;
	while (kf && D.nk < MIG_MAX_KIDS && fscanf(kf, "%d", &kid) == 1)
		D.kids[D.nk++] = kid;
	if (kf)
		fclose(kf);
	reap_kids(D.sock, D.kids, &D.nk); /* those that ended before we were here */
}

/* A signal for the process: to the migrant, through home. */
static void on_signal(void)
{
	struct signalfd_siginfo si;
	ssize_t rn = read(D.sfd, &si, sizeof(si));
	if (rn != sizeof(si) || (si.ssi_signo == SIGCONT && D.worker && (pid_t)si.ssi_pid == D.worker) ||
	    original_timer(&si) || (si.ssi_signo == SIGPIPE && si.ssi_code == SI_USER && (pid_t)si.ssi_pid == getpid())) {
		/* The worker letting us start; a tick of a timer of the original
		 * (the migrant has its own); our own write into a pipe nobody
		 * reads any more (the pump tells the migrant's side: EPIPE there). */
		return;
	}
	if (si.ssi_signo == SIGCHLD) {
		/* Children it had when it left stay here, ours now: reaped here
		 * (no zombies); their ghosts end likewise and give the migrant
		 * its SIGCHLD. */
		reap_kids(D.sock, D.kids, &D.nk);
		return;
	}
	struct winsize ws;
	if (si.ssi_signo == SIGWINCH && D.tty >= 0 && ioctl(D.tty, TIOCGWINSZ, &ws) == 0)
		mig_send(D.sock, MF_WINSZ, 0, (int64_t)ws.ws_row << 16 | ws.ws_col, NULL, 0);
	/* A queued one keeps its value and sender (sigqueue: si_code < 0,
	 * which kill() cannot give). */
	uint8_t q[MIG_SIGINFO_LEN];
	bool queued = si.ssi_code < 0 && si.ssi_code != SI_TKILL;
	if (queued)
		mig_siginfo_put(q, &(struct mig_siginfo){ .code = si.ssi_code, .pid = si.ssi_pid, .uid = si.ssi_uid,
							  .value = si.ssi_ptr });
	mig_send(D.sock, MF_SIG, 0, si.ssi_signo, queued ? q : NULL, queued ? sizeof(q) : 0);
}

/* A frame from krgd. -1: the deputy ends (255). */
/* Handing over (MF_BECOME): our real end of the migrant's fd f->num, to
 * become that fd in the process. One we closed already (its input ended
 * at home, or its reader went away) is made again as an end that behaves
 * the same: a pipe or socket whose other end is closed (end of file when
 * read, EPIPE when written). */
static int ready_fd(const struct mig_pump *p, const struct mig_pfd *f)
{
	if (f->fd >= 0)
		return f->fd;
	for (size_t i = 0; i < p->n; i++)  /* a socket's other stream: the same socket */
		if (p->p[i].num == (f->num | MIG_REV) && p->p[i].fd >= 0)
			return p->p[i].fd;
	int sv[2];
	if (f->stype ? socketpair(AF_UNIX, f->stype | SOCK_CLOEXEC, 0, sv) < 0 : pipe2(sv, O_CLOEXEC) < 0)
		return -1;
	bool keep_read = f->stype || f->src;
	close(keep_read ? sv[1] : sv[0]);
	return keep_read ? sv[0] : sv[1];
}

/* Back home, the process is restored into us (inplace.c): what the
 * migrant wrote is written out, our real fds go to the holder by the
 * migrant's numbers (MF_READY), and we only wait from then on. `want`:
 * "NUM:r|w:SOCKTYPE ..." the migrant's fds that stand for one here; one we
 * never had (its stream began on another node) is made as one we closed. */
static void hand_over(const char *want, size_t wlen)
{
	mig_pump_flush(&D.p);
	char map_s[MIG_MAX_PROXIES * 48] = "", w[MIG_MAX_PROXIES * 16 + 1];
	size_t ml = 0;
	snprintf(w, sizeof(w), "%.*s", (int)wlen, want);
	for (char *tok = strtok(w, " "); tok && ml + 24 < sizeof(map_s); tok = strtok(NULL, " ")) {
		int num, stype = 0;
		char dir = 'w';
		if (sscanf(tok, "%d:%c:%d", &num, &dir, &stype) < 2)
			continue;
		struct mig_pfd none = { .num = num, .fd = -1, .src = dir == 'r', .stype = stype }, *f = &none;
		for (size_t i = 0; i < D.p.n; i++)
			if (D.p.p[i].num == num)
				f = &D.p.p[i];
		int fd = ready_fd(&D.p, f);
		if (fd >= 0)
			ml += (size_t)snprintf(map_s + ml, sizeof(map_s) - ml, "%s%d:%d", ml ? " " : "", num, fd);
	}
	mig_send(D.sock, MF_READY, 0, 0, map_s, ml);
	D.handed = true;
}

static int on_krgd(void)
{
	ssize_t n = recv(D.sock, D.buf, sizeof(D.buf), 0);
	if (n < 0 && (errno == EINTR || errno == ECONNRESET))
		return 0;
	if (n < (ssize_t)sizeof(struct mig_hdr)) {
		/* krgd went away: the migrant is out of reach. */
		mig_pump_flush_close(&D.p);
		return -1;
	}
	struct mig_hdr h;
	memcpy(&h, D.buf, sizeof(h));
	if (h.type == MF_EXIT) {
		mig_pump_flush_close(&D.p);
		mig_die_like((int)h.arg);
	}
	if (h.type == MF_PAUSE || h.type == MF_RESUME) {
		/* Back home in place: its input stays in the real fds. */
		D.p.out_enabled = h.type == MF_RESUME;
		D.handed = false;
		return 0;
	}
	if (h.type == MF_BECOME) {
		hand_over((const char *)D.buf + sizeof(h), (size_t)n - sizeof(h));
		return 0;
	}
	if (D.handed)
		return 0;
	if (h.type == MF_KID_SIG && h.arg > 0 && h.arg < 65) {
		/* The migrant signalled the child's ghost: only a child not
		 * reaped yet (else the pid may be another's). */
		for (size_t i = 0; i < D.nk; i++)
			if (D.kids[i] == h.fd)
				kill(D.kids[i], (int)h.arg);
		return 0;
	}
	mig_pump_frame(&D.p, &h, D.buf + sizeof(h), (size_t)n - sizeof(h));
	/* All the frames that are there, then the writes (not one frame per
	 * poll, the writes waiting behind them). A closed fd's entry is
	 * skipped by mig_pump_ready. */
	mig_pump_more(&D.p, D.buf, sizeof(D.buf), 64);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "krg-deputy: started by krgd's migration only\n");
		return 255;
	}
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	unsigned long long carried = 0;
	int first = 5;
	if (argc > 5 && sscanf(argv[5], "-c%llx:%d", &carried, &D.worker) == 2)
		first = 6;
	drop_carried(carried);
	prctl(PR_SET_NAME, argv[4], 0, 0, 0);
	D.p = (struct mig_pump){ .sock = -1, .out_enabled = true, .small_writes = true };
	for (int i = first; i < argc && D.p.n < MIG_MAX_PROXIES; i++)
		add_proxy(argv[i]);
	close_the_rest();
	D.sfd = signalfd(-1, &all, SFD_CLOEXEC);
	D.sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (D.sock >= 0)
		D.p.chunk = mig_sock_bufs(D.sock);
	if (D.sfd < 0 || say_hello(argv[1], argv[2], argv[3]) < 0)
		return 255;
	list_kids();
	for (;;) {
		struct pollfd pfd[2 + MIG_MAX_PROXIES];
		size_t map[MIG_MAX_PROXIES];
		pfd[0] = (struct pollfd){ .fd = D.sock, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = D.handed ? -1 : D.sfd, .events = POLLIN };
		size_t k = D.handed ? 0 : mig_pump_pollfds(&D.p, pfd + 2, MIG_MAX_PROXIES, map);
		if (poll(pfd, 2 + k, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 255;
		}
		if (pfd[1].revents & POLLIN)
			on_signal();
		if (pfd[0].revents) {
			int r = on_krgd();
			if (r < 0)
				return 255;
			if (r == 0)
				continue;
		}
		for (size_t i = 0; i < k; i++)
			if (pfd[2 + i].revents && mig_pump_ready(&D.p, map[i], pfd[2 + i].revents) < 0)
				return 255;
	}
}
