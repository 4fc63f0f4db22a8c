/* holder.c — the target side of a migration, in a child of krgd
 * (mig-int.h): creates the FIFOs the image's proxied fds are reopened
 * from (MIG_FIFO_DIR/<id>/fd<N>) and holds an O_RDWR end of each (so the
 * restore never blocks and the migrant never gets EPIPE), restores the
 * process as its own child (ckpt_restore), answers MF_RESTORED, then
 * stays its parent until it exits or moves on:
 *   - pumps the FIFOs (output only after MF_GO, so that what the migrant
 *     wrote on its previous node reaches home first);
 *   - MF_SIG: kill(migrant, sig);
 *   - MF_LEAVE: the migrant was dumped and runs elsewhere now: send what
 *     it wrote (MF_DATA...), MF_DRAINED, kill it, exit;
 *   - its exit: last output, MF_EOF per fd, MF_EXIT with the wait status;
 *   - the children it left at home: a ghost each (ghost.c), made by the
 *     restore; MF_KID_SIG from a ghost goes to krgd (home signals the real
 *     child), MF_KID_EXIT from krgd goes to the ghost (it dies likewise). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ckpt/ckpt.h"
#include "lib/fault.h"
#include "ipc/intercept.h"
#include "lib/log.h"
#include "proc/migrate/mig-int.h"
#include "proc/migrate/worker.h"

/* Fault injection for the tests (migrate.sh 6e): while the file
 * that fault point lazy-corrupt names exists, one byte in the middle of the
 * received pages is flipped before the restore, as a memory or tmpfs
 * fault on this node would (the transfer itself is authenticated): the
 * lazy restore must find it and kill the process, not run it on with it. */
static void test_corrupt(const char *dir)
{
	char buf[512];
	const char *flag = krg_fault_value("lazy-corrupt", buf, sizeof(buf));
	if (!flag || access(flag, F_OK) < 0)
		return;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "pages-", 6)) {
			int fd = openat(dirfd(d), e->d_name, O_RDWR | O_CLOEXEC);
			struct stat st;
			uint8_t b;
			if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 4096 && pread(fd, &b, 1, st.st_size / 2) == 1) {
				b ^= 0x5a;
				if (pwrite(fd, &b, 1, st.st_size / 2) != 1)
					b = 0;
			}
			if (fd >= 0)
				close(fd);
		}
	if (d)
		closedir(d);
}

/* The lazy restore is over (all in, failed, or the migrant gone): free
 * it and log what happened. */
static void lazy_end(struct ckpt_lazy *lz, uint32_t id, pid_t pid)
{
	struct ckpt_lazy_stats st;
	ckpt_lazy_free(lz, &st);
	if (st.result < 0)
		log_error("migration of %u: lazy restore of process %d failed: %s", id, (int)pid, st.msg);
	else if (!st.complete)
		log_debug("migration of %u: process %d gone before all its memory was in (%.1f MiB copied)", id, (int)pid,
			  (double)st.bytes / 1048576.0);
	else
		log_info("migration of %u: process %d has all its memory: %.1f MiB copied in %.3f s after it started "
			 "(%llu page faults served, %llu forks followed)",
			 id, (int)pid, (double)st.bytes / 1048576.0, st.secs, (unsigned long long)st.faults, (unsigned long long)st.forks);
}

/* The migrant runs with the FIFOs of its image at the numbers of the fds
 * left at home; now each gets what it stood for (docs/migration.md,
 * "Forwarded fds"):
 *   - a socket: one end of a socketpair of the same type (both directions,
 *     message boundaries kept, shutdown and close seen as at home), the
 *     other end pumped here as two streams (N in, N | MIG_REV out);
 *   - a pipe or FIFO: the FIFO stays, but our end is reopened read-only or
 *     write-only instead of the O_RDWR end that kept it from blocking, so
 *     the migrant closing its end is seen here (end of file, or EPIPE) and
 *     goes home, and home's going away reaches it the same way. */
static void forward_fds(struct mig_pump *p, const struct mig_hold *hd, pid_t pid, const char *fifodir)
{
	p->holder = true;
	size_t n0 = p->n;
	for (size_t i = 0; i < n0 && i < hd->n; i++) {
		struct mig_pfd *f = &p->p[i];
		if (hd->tty[i] || f->fd < 0)
			continue;
		char path[200];
		struct stat st;
		if (hd->stype[i]) {
			int sv[2], r = -EMFILE;
			snprintf(path, sizeof(path), "%s/fd%d.sock", fifodir, hd->num[i]);
			/* Its peer is home's, not us (root): SO_PEERCRED and
			 * SO_PEERGROUPS say so without krgd's trap too. */
			if (p->n < MIG_MAX_PROXIES && (r = mig_peer_socketpair(hd->stype[i], &hd->peer[i], sv)) == 0) {
				mig_sock_bufs(sv[1]);
				r = mig_fd_install(pid, hd->num[i], sv[1], hd->uid, hd->gid, path);
				if (fstat(sv[1], &st) < 0)
					st.st_ino = 0;
				close(sv[1]);
				if (r < 0)
					close(sv[0]);
			}
			if (r < 0) {
				log_error("migration of %u: fd %d of process %d stays a FIFO, not a socket: %s", hd->id, hd->num[i],
					  (int)pid, strerror(-r));
				continue;
			}
			fcntl(sv[0], F_SETFL, O_NONBLOCK);
			/* Room for large frames both ways (the migrant's end takes
			 * what it writes without waking per quarter of a small
			 * buffer). */
			mig_sock_bufs(sv[0]);
			/* krgd answers its getsockname/getpeername with home's
			 * addresses (its filter sends them there). */
			mig_send(p->sock, MF_SOCKINO, hd->num[i], (int64_t)st.st_ino, NULL, 0);
			close(f->fd);
			*f = (struct mig_pfd){ .num = hd->num[i], .fd = sv[0], .stype = hd->stype[i], .exact = true, .ino = st.st_ino };
			p->p[p->n++] = (struct mig_pfd){ .num = hd->num[i] | MIG_REV, .fd = fcntl(sv[0], F_DUPFD_CLOEXEC, 0),
							 .src = true, .stype = hd->stype[i], .exact = true };
			continue;
		}
		snprintf(path, sizeof(path), "%s/fd%d", fifodir, hd->num[i]);
		int fd = open(path, (f->src ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			close(f->fd);
			f->fd = fd;
		}
		f->exact = fd >= 0;
	}
}

/* It moves on: what we wrote into its sockets that it has not read is
 * taken back out of them (it is frozen, dumped) and goes to its next node
 * through home, like the input queued here. */
static void take_back_unread(int sock, const struct mig_pump *p, pid_t pid, int pfd)
{
	static uint8_t in[MIG_CHUNK_SMALL];
	char dp[64], lp[320], link[64];
	snprintf(dp, sizeof(dp), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dp);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		snprintf(lp, sizeof(lp), "%s/%s", dp, e->d_name);
		ssize_t k = readlink(lp, link, sizeof(link) - 1);
		unsigned long ino;
		if (k <= 0 || (link[k] = 0, sscanf(link, "socket:[%lu]", &ino) != 1))
			continue;
		for (size_t i = 0; i < p->n; i++) {
			const struct mig_pfd *f = &p->p[i];
			if (!f->stype || f->src || f->ino != ino)
				continue;
			int mine = (int)syscall(SYS_pidfd_getfd, pfd, atoi(e->d_name), 0);
			for (;;) {
				/* A message longer than a frame goes in pieces (its
				 * boundary is lost on this path). */
				ssize_t len = f->stype == SOCK_STREAM ? (ssize_t)sizeof(in)
								       : recv(mine, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
				uint8_t *m = len > (ssize_t)sizeof(in) ? malloc((size_t)len) : in;
				if (mine < 0 || len < 0 || !m)
					break;
				k = recv(mine, m, len > (ssize_t)sizeof(in) ? (size_t)len : sizeof(in), MSG_DONTWAIT);
				for (ssize_t off = 0; off < k; off += MIG_CHUNK_SMALL)
					mig_send(sock, MF_BACK, f->num, 0, m + off,
						 (size_t)(k - off < MIG_CHUNK_SMALL ? k - off : MIG_CHUNK_SMALL));
				if (m != in)
					free(m);
				/* 0: end of file (home shut it), or an empty message,
				 * which home would drop anyway. */
				if (k <= 0)
					break;
			}
			if (mine >= 0)
				close(mine);
			f = NULL;
			break;
		}
	}
	if (d)
		closedir(d);
}

/* The holder's state, from its start to the migrant's end (one holder a
 * process: static, its buffers are large). */
static struct holder {
	int sock;                  /* to krgd */
	const struct mig_hold *hd;
	char fifodir[128];
	struct mig_pump p;
	int master, slave, tty_in; /* the pty of its terminals; the terminal fd it reads */
	bool out_taken;
	/* Children left at home: a ghost each (the restore's extra children). */
	struct ckpt_extra_child xs[MIG_MAX_KIDS];
	char xa[MIG_MAX_KIDS][5][24];
	char *xv[MIG_MAX_KIDS][7];
	int gfd[MIG_MAX_KIDS], gend[MIG_MAX_KIDS];
	bool gword[MIG_MAX_KIDS];  /* its status was given: its death is no news */
	size_t ng;
	struct ckpt_lazy *lz;      /* the lazy restore, while it serves */
	pid_t pid;                 /* the migrant */
	int pfd;                   /* its pidfd */
	/* What it wrote to its terminal's FIFO before it got the pty: goes
	 * home first, at MF_GO. */
	uint8_t early[MIG_CHUNK];
	size_t early_len;
	int early_num;
	bool leaving;
	bool killed;               /* SIGKILL before MF_GO: the move failed (the original died before its commit), no MF_GO comes */
	int exit_status;           /* it ended before MF_GO: reported once home says go */
	uint8_t buf[sizeof(struct mig_hdr) + MIG_CHUNK + 64];
	/* Back home, frames that came while it was to be restored into its
	 * deputy (inplace.c), handled first when it is restored beside it. */
	struct mig_inplace_left left;
	size_t replay;
	/* Siblings (adopt.c): afd >= 0, we restored it into a shell of the
	 * holder with its parent's pid (our end of the socket to it); adopts,
	 * the children we forked for siblings' holders. */
	int afd;
	struct mig_adopts adopts;
} H;

/* One line to krgd instead of MF_RESTORED, and the end. */
static _Noreturn void holder_fail(const char *msg, size_t len)
{
	mig_send(H.sock, MF_ERR, 0, 0, msg, len);
	mig_rm_rf(H.fifodir);
	_exit(0);
}

/* Terminals: one pty for all of them; the image's FIFO paths point to its
 * slave, so the migrant gets a terminal again. Its line discipline
 * neither echoes nor post-processes: home's does. */
static void holder_open_pty(void)
{
	const struct mig_hold *hd = H.hd;
	for (size_t i = 0; i < hd->n && H.master < 0; i++) {
		if (!hd->tty[i])
			continue;
		H.master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		struct termios t;
		if (H.master < 0 || grantpt(H.master) < 0 || unlockpt(H.master) < 0 || !ptsname(H.master)) {
			H.master = -1;
			break;
		}
		int sl = open(ptsname(H.master), O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (sl >= 0 && tcgetattr(sl, &t) == 0) {
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
			t.c_oflag &= ~(tcflag_t)OPOST;
			tcsetattr(sl, TCSANOW, &t);
		}
		if (sl >= 0 && hd->rows && hd->cols) {
			struct winsize ws = { .ws_row = (unsigned short)hd->rows, .ws_col = (unsigned short)hd->cols };
			ioctl(sl, TIOCSWINSZ, &ws);
		}
		if (sl >= 0) {
			/* Kept: what the migrant has not read when it moves on is
			 * taken back from it and goes to its next node. */
			chown(ptsname(H.master), hd->uid, hd->gid);
			fcntl(sl, F_SETFL, fcntl(sl, F_GETFL) | O_NONBLOCK);
			H.slave = sl;
		}
	}
	for (size_t i = 0; i < hd->n; i++)
		if (hd->tty[i] && hd->reads[i] && H.tty_in < 0)
			H.tty_in = hd->num[i];
}

/* The FIFO of each proxied fd, an O_RDWR end of it in the pump. */
static void holder_make_fifos(void)
{
	const struct mig_hold *hd = H.hd;
	char path[160];
	for (size_t i = 0; i < hd->n; i++) {
		snprintf(path, sizeof(path), "%s/fd%d", H.fifodir, hd->num[i]);
		unlink(path);
		int fd = -1;
		if (mkfifo(path, 0600) == 0 && chown(path, hd->uid, hd->gid) == 0)
			fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		/* A pipe that holds a large frame (best effort). */
		if (fd >= 0)
			(void)fcntl(fd, F_SETPIPE_SZ, (int)MIG_CHUNK * 4);
		if (fd < 0) {
			char e[300];
			int n = snprintf(e, sizeof(e), "cannot create %s: %s", path, strerror(errno));
			holder_fail(e, (size_t)n);
		}
		/* The migrant reads it: we write into it. */
		H.p.p[H.p.n++] = (struct mig_pfd){ .num = hd->num[i], .fd = fd, .src = !hd->reads[i] };
	}
}

/* Children left at home: a ghost each, made by the restore as the
 * migrant's children before it runs (so its first wait() finds them),
 * each with its end of a socketpair to us (not close-on-exec: it lives
 * through the ghost's exec; the ghost closes the others). */
static void holder_prepare_ghosts(void)
{
	const struct mig_hold *hd = H.hd;
	for (size_t i = 0; i < hd->nkids && i < MIG_MAX_KIDS; i++) {
		int sv[2];
		size_t ng = H.ng;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || fcntl(sv[1], F_SETFD, 0) < 0) {
			char e[128];
			int n = snprintf(e, sizeof(e), "a ghost for child %d: %s", (int)hd->kid_home[i], strerror(errno));
			holder_fail(e, (size_t)n);
		}
		snprintf(H.xa[ng][0], sizeof(H.xa[ng][0]), "%d", sv[1]);
		/* The real child's ids, so that who may signal it is the same. */
		if (hd->kid_ids[i]) {
			snprintf(H.xa[ng][1], sizeof(H.xa[ng][1]), "%u,%u", (unsigned)hd->kid_uid[i], (unsigned)hd->kid_suid[i]);
			snprintf(H.xa[ng][2], sizeof(H.xa[ng][2]), "%u", (unsigned)hd->kid_gid[i]);
		} else {
			snprintf(H.xa[ng][1], sizeof(H.xa[ng][1]), "%u", (unsigned)hd->uid);
			snprintf(H.xa[ng][2], sizeof(H.xa[ng][2]), "%u", (unsigned)hd->gid);
		}
		snprintf(H.xa[ng][3], sizeof(H.xa[ng][3]), "%.15s", hd->kid_comm[i][0] ? hd->kid_comm[i] : "krg-ghost");
		H.xv[ng][0] = (char *)hd->ghost;
		for (int k = 0; k < 4; k++)
			H.xv[ng][k + 1] = H.xa[ng][k];
		H.xv[ng][5] = NULL;
		/* Stopped at home, the migrant not told yet: the ghost stops too. */
		if (hd->kid_stop[i]) {
			snprintf(H.xa[ng][4], sizeof(H.xa[ng][4]), "%d", hd->kid_stop[i]);
			H.xv[ng][5] = H.xa[ng][4];
			H.xv[ng][6] = NULL;
		}
		H.xs[ng] = (struct ckpt_extra_child){ .pid = hd->kid_as[i], .argv = H.xv[ng] };
		H.gfd[ng] = sv[0];
		H.gend[ng] = sv[1];
		H.gword[ng] = false;
		H.ng++;
	}
}

/* The migrant restored as our child (its ghosts with it); how long it
 * took, ms. On failure krgd hears why and the holder ends. */
static int32_t holder_restore(void)
{
	const struct mig_hold *hd = H.hd;
	/* Lazy restore (post-copy from the received image): the migrant runs
	 * once all but its private memory is back; a thread of ours serves its
	 * faults and copies the rest in (ckpt.h). KRG_FAULT=mig-no-lazy in krgd's
	 * environment copies everything first, for comparison. */
	/* It dies with us (SIGKILL): nobody else could signal it, reap it or
	 * serve its memory, and home reports it killed. */
	int lfd = -1;
	bool sockets = false;
	for (size_t i = 0; i < hd->n; i++)
		sockets = sockets || (hd->stype[i] && !hd->tty[i]);
	struct ckpt_restore_opts ro = { .extra = H.xs, .n_extra = H.ng, .lazy = krg_fault_on("mig-no-lazy") ? NULL : &H.lz,
					.root_pdeathsig = SIGKILL, .ipc_listener = hd->isock >= 0 ? &lfd : NULL, .ipc_sockets = sockets };
	struct ckpt_error err = { 0 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	test_corrupt(hd->dir);
	/* A sibling's holder has its parent's pid here: restored into a
	 * shell of that holder's (adopt.c), whose child it is then. */
	if (H.afd >= 0) {
		pid_t want = ckpt_image_root_pid(hd->dir), shell = want > 0 ? mig_adopt_shell(H.afd, want) : -EINVAL;
		if (shell == want && H.ng == 0) {
			ro.into = shell;
			ro.lazy = NULL;
		} else {
			log_info("migration of %u: no shell with pid %d from the holder with its parent's pid: %s", hd->id, (int)want,
				 shell < 0 ? strerror(-shell) : "another pid");
			if (shell > 0)
				kill(shell, SIGKILL);
			close(H.afd);
			H.afd = -1;
		}
	}
	struct mig_dsm dsm;
	ro.dsm = mig_dsm_init(&dsm, hd->isock);
	int r = ckpt_restore_opts(hd->dir, NULL, &ro, &H.pid, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (size_t g = 0; g < H.ng; g++)
		close(H.gend[g]);
	/* Its System V segments of the DSM: served by krgd from now. */
	if (r == 0 && mig_dsm_hand_over(&dsm) < 0) {
		snprintf(err.msg, sizeof(err.msg), "its System V segments cannot be served on this node (krgd's channel closed)");
		r = -EIO;
	}
	mig_dsm_done(&dsm);
	if (r < 0) {
		mig_rm_rf(hd->dir);
		holder_fail(err.msg, strlen(err.msg));
	}
	/* Its IPC calls wait in the kernel until krgd has the listener. */
	if (lfd >= 0) {
		int e = krg_intercept_send_fd(hd->isock, lfd);
		if (e < 0)
			fprintf(stderr, "krg holder: handing the IPC listener to krgd: %s\n", strerror(-e));
		close(lfd);
	}
	if (hd->isock >= 0)
		close(hd->isock);
	for (size_t g = 0; g < H.ng; g++)
		mig_send(H.sock, MF_GHOST, hd->kid_home[g], H.xs[g].got, NULL, 0);
	H.pfd = (int)syscall(SYS_pidfd_open, H.pid, 0);
	return (int32_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
}

/* Terminals: the migrant gets the pty's slave instead of the FIFO the
 * image reopened, the pump its master (input in; output out once: fd 1
 * and 2 are the same terminal at home as well). What it wrote into the
 * FIFO meanwhile goes home first, at MF_GO. */
static void holder_ttys_to_pty(void)
{
	const struct mig_hold *hd = H.hd;
	struct mig_pump *p = &H.p;
	int nums[MIG_MAX_PROXIES];
	size_t nn = 0;
	for (size_t i = 0; i < hd->n; i++)
		if (hd->tty[i])
			nums[nn++] = hd->num[i];
	if (mig_fd_replace(H.pid, nums, nn, ptsname(H.master)) < 0)
		return;
	for (size_t i = 0; i < p->n; i++) {
		if (!hd->tty[i])
			continue;
		int fifo = p->p[i].fd;
		if (p->p[i].src && H.early_num < 0) {
			ssize_t k = read(fifo, H.early, sizeof(H.early));
			H.early_len = k > 0 ? (size_t)k : 0;
			H.early_num = p->p[i].num;
		} else if (!p->p[i].src) {
			uint8_t b[4096];
			ssize_t k = read(fifo, b, sizeof(b));
			if (k > 0 && write(H.master, b, (size_t)k) < 0)
				k = 0;
		}
		close(fifo);
		p->p[i].fd = -1;
		if (!p->p[i].src)
			p->p[i].fd = dup(H.master);
		else if (!H.out_taken && (p->p[i].fd = dup(H.master)) >= 0)
			H.out_taken = true;
		if (p->p[i].fd >= 0)
			fcntl(p->p[i].fd, F_SETFD, FD_CLOEXEC);
	}
}

/* Ghost g spoke or ended. */
static void holder_on_ghost(size_t g)
{
	struct mig_hdr gh;
	ssize_t n = recv(H.gfd[g], &gh, sizeof(gh), MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n == (ssize_t)sizeof(gh) && gh.type == MF_KID_SIG && !H.leaving) {
		mig_send(H.sock, MF_KID_SIG, H.hd->kid_home[g], gh.arg, NULL, 0);
	} else if (n < (ssize_t)sizeof(gh)) {
		/* It died without its status: killed (SIGKILL cannot be
		 * caught), which the real child must be too. */
		if (!H.gword[g] && !H.leaving)
			mig_send(H.sock, MF_KID_SIG, H.hd->kid_home[g], SIGKILL, NULL, 0);
		close(H.gfd[g]);
		H.gfd[g] = -1;
	}
}

/* The migrant ended. True: the holder is done. */
static bool holder_on_exit(void)
{
	int st = 0;
	/* Adopted: its parent (the adopter) tells how it ended. */
	if (H.afd >= 0)
		st = mig_adopt_status(H.afd);
	else if (waitpid(H.pid, &st, 0) != H.pid)
		st = SIGKILL;
	if (!H.leaving && !H.p.out_enabled && H.killed) {
		/* The move failed: as below, done, its output going nowhere
		 * (the original's was the real one). */
		mig_send(H.sock, MF_EXIT, 0, st, NULL, 0);
		return true;
	}
	if (!H.leaving && !H.p.out_enabled) {
		/* Home does not know yet that it runs here: its last output and
		 * its status wait for MF_GO. */
		H.exit_status = st;
		return false;
	}
	if (!H.leaving) {
		mig_pump_drain(&H.p, true);
		mig_send(H.sock, MF_EXIT, 0, st, NULL, 0);
	}
	return true;
}

/* MF_SIG: the signal, queued with its value, code and sender if it was
 * queued at home. */
static void holder_signal(const struct mig_hdr *h, const uint8_t *body, size_t len)
{
	if (h->arg == SIGKILL && !H.p.out_enabled)
		H.killed = true;
	struct mig_siginfo q;
	if (mig_siginfo_get(body, len, &q)) {
		siginfo_t si = { .si_signo = (int)h->arg, .si_code = q.code };
		si.si_pid = (pid_t)q.pid;
		si.si_uid = (uid_t)q.uid;
		si.si_value.sival_ptr = (void *)(uintptr_t)q.value;
		if (syscall(SYS_rt_sigqueueinfo, H.pid, (int)h->arg, &si) == 0)
			return;
	}
	kill(H.pid, (int)h->arg);
}

/* MF_LEAVE: it was dumped and runs elsewhere now. What it has not read
 * goes back, then MF_DRAINED (arg: the signals pending before its dump,
 * which the image carries), and this copy is killed. */
static void holder_leave(const struct mig_hdr *h)
{
	struct mig_pump *p = &H.p;
	H.leaving = true;
	mig_pump_drain(p, false);
	/* Input it did not read: queued here, or in its terminal. */
	mig_pump_return(p, MF_BACK);
	take_back_unread(H.sock, p, H.pid, H.pfd);
	/* Its ends close with it: no end of file goes home. */
	for (size_t i = 0; i < p->n; i++)
		if (p->p[i].fd >= 0) {
			close(p->p[i].fd);
			p->p[i].fd = -1;
		}
	static uint8_t in[MIG_CHUNK_SMALL];
	ssize_t k;
	while (H.slave >= 0 && H.tty_in >= 0 && (k = read(H.slave, in, sizeof(in))) > 0)
		mig_send(H.sock, MF_BACK, H.tty_in, 0, in, (size_t)k);
	/* Signals that reached it after its dump: home sends them on to its
	 * next node; not its timers' ticks (the image has the timers). */
	unsigned long long came = mig_pending_of(H.pid) & ~(unsigned long long)h->arg & ~mig_timer_signals(H.pid);
	mig_send(H.sock, MF_DRAINED, 0, (int64_t)came, NULL, 0);
	kill(H.pid, SIGKILL);
}

enum holder_step { STEP_NEXT, STEP_PUMP, STEP_DONE };

/* A frame from krgd. */
static enum holder_step holder_on_krgd(void)
{
	const struct mig_hold *hd = H.hd;
	ssize_t n;
	bool replayed = H.replay < H.left.n;
	if (replayed) {
		n = (ssize_t)H.left.len[H.replay];
		memcpy(H.buf, H.left.f[H.replay], H.left.len[H.replay]);
		free(H.left.f[H.replay++]);
	} else {
		int passed = -1;
		n = mig_recv_frame(H.sock, H.buf, sizeof(H.buf), &passed);
		/* A sibling's holder asks for a shell (adopt.c). */
		if (passed >= 0 && n >= (ssize_t)sizeof(struct mig_hdr) && H.buf[0] == MF_SHELL) {
			mig_adopt_add(&H.adopts, passed);
			return STEP_NEXT;
		}
		if (passed >= 0)
			close(passed);
	}
	if (n < 0 && (errno == EINTR || errno == ECONNRESET))
		return STEP_NEXT;
	if (n < (ssize_t)sizeof(struct mig_hdr)) {
		/* krgd is gone: nobody can reach the migrant any more. */
		kill(H.pid, SIGKILL);
		H.leaving = true;
		return STEP_NEXT;
	}
	struct mig_hdr h;
	memcpy(&h, H.buf, sizeof(h));
	const uint8_t *body = H.buf + sizeof(h);
	size_t len = (size_t)n - sizeof(h);
	if (mig_pump_frame(&H.p, &h, body, len)) {
		/* All the frames that are there, then the pump's writes in the
		 * same round. */
		if (!replayed)
			mig_pump_more(&H.p, H.buf, sizeof(H.buf), 64);
		return STEP_PUMP;
	}
	if (h.type == MF_GO) {
		if (H.early_len)
			mig_send(H.sock, MF_DATA, H.early_num, 0, H.early, H.early_len);
		H.early_len = 0;
		H.p.out_enabled = true;
		if (H.exit_status >= 0) {
			mig_pump_drain(&H.p, true);
			mig_send(H.sock, MF_EXIT, 0, H.exit_status, NULL, 0);
			return STEP_DONE;
		}
	} else if (H.exit_status >= 0 && ((h.type == MF_SIG && h.arg == SIGKILL) || h.type == MF_LEAVE)) {
		/* The move failed (home kills the copy) or went on: done. */
		mig_send(H.sock, MF_EXIT, 0, H.exit_status, NULL, 0);
		return STEP_DONE;
	} else if (h.type == MF_NOTIFY) {
		int nfd = (int)syscall(SYS_pidfd_getfd, H.pfd, (int)h.arg, 0);
		if (nfd >= 0) {
			ssize_t w = write(nfd, "0\n", 2);
			(void)w;
			close(nfd);
		}
	} else if (h.type == MF_WINSZ && H.master >= 0) {
		struct winsize ws = { .ws_row = (unsigned short)(h.arg >> 16), .ws_col = (unsigned short)(h.arg & 0xffff) };
		ioctl(H.master, TIOCSWINSZ, &ws);
	} else if (h.type == MF_SIG && h.arg > 0 && h.arg < 65) {
		holder_signal(&h, body, len);
	} else if (h.type == MF_KID_EXIT) {
		for (size_t g = 0; g < H.ng; g++)
			if (hd->kid_home[g] == h.fd && !H.gword[g] && H.gfd[g] >= 0) {
				H.gword[g] = true;
				/* A stopped ghost could not end: the real child was
				 * continued at home before it ended. */
				if (H.xs[g].got > 0)
					kill(H.xs[g].got, SIGCONT);
				mig_send(H.gfd[g], MF_KID_EXIT, 0, h.arg, NULL, 0);
			}
	} else if (h.type == MF_LEAVE) {
		holder_leave(&h);
	}
	return STEP_NEXT;
}

/* Until the migrant is gone: krgd's frames, the pump, the ghosts, the
 * lazy restore's end. */
static void holder_loop(void)
{
	for (;;) {
		struct pollfd fds[3 + MIG_MAX_PROXIES + MIG_MAX_KIDS + 2 * MIG_MAX_ADOPT];
		size_t map[MIG_MAX_PROXIES], amap[2 * MIG_MAX_ADOPT];
		size_t ng = H.ng;
		fds[0] = (struct pollfd){ .fd = H.sock, .events = POLLIN };
		fds[1] = (struct pollfd){ .fd = H.exit_status < 0 ? H.pfd : -1, .events = POLLIN };
		size_t k = mig_pump_pollfds(&H.p, fds + 2, MIG_MAX_PROXIES, map);
		for (size_t g = 0; g < ng; g++)
			fds[2 + k + g] = (struct pollfd){ .fd = H.gfd[g], .events = POLLIN };
		fds[2 + k + ng] = (struct pollfd){ .fd = H.lz ? ckpt_lazy_fd(H.lz) : -1, .events = POLLIN };
		/* Siblings' holders asking for a shell, and the children we adopted. */
		size_t na = mig_adopt_pollfds(&H.adopts, fds + 3 + k + ng, 2 * MIG_MAX_ADOPT, amap);
		/* Frames kept while it was to be restored into its deputy first. */
		bool rp = H.replay < H.left.n;
		if (poll(fds, 3 + k + ng + na, rp ? 0 : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (rp)
			fds[0].revents |= POLLIN;
		for (size_t i = 0; i < na; i++)
			if (fds[3 + k + ng + i].revents)
				mig_adopt_ready(&H.adopts, amap[i], fds[3 + k + ng + i].revents);
		if (fds[2 + k + ng].revents) {
			lazy_end(H.lz, H.hd->id, H.pid);
			H.lz = NULL;
		}
		for (size_t g = 0; g < ng; g++)
			if (fds[2 + k + g].revents)
				holder_on_ghost(g);
		if (fds[1].revents) {
			if (holder_on_exit())
				break;
			continue;
		}
		if (fds[0].revents) {
			enum holder_step st = holder_on_krgd();
			if (st == STEP_DONE)
				break;
			if (st == STEP_NEXT)
				continue;
		}
		for (size_t i = 0; i < k; i++)
			if (fds[2 + i].revents)
				mig_pump_ready(&H.p, map[i], fds[2 + i].revents);
	}
}

_Noreturn void mig_holder_main(int sock, const struct mig_hold *hd)
{
	mig_child_signals();
	signal(SIGPIPE, SIG_IGN);
	/* Back home: into its deputy, if it can be (inplace.c); else on as
	 * for any node, with the frames that came meanwhile. */
	if (hd->into && mig_inplace(sock, hd, &H.left) == 0) {
		mig_rm_rf(hd->dir);
		_exit(0);
	}
	H.afd = hd->adopt_fd;
	H.sock = sock;
	H.hd = hd;
	H.p = (struct mig_pump){ .sock = sock, .chunk = mig_sock_bufs(sock) };
	H.master = H.slave = H.tty_in = H.early_num = H.exit_status = -1;
	snprintf(H.fifodir, sizeof(H.fifodir), "%s/%u", MIG_FIFO_DIR, hd->id);
	if (hd->n) {
		mkdir(MIG_FIFO_DIR, 0755);
		mkdir(H.fifodir, 0755);
	}
	holder_open_pty();
	holder_make_fifos();
	holder_prepare_ghosts();
	int32_t restore_ms = holder_restore();
	if (H.master >= 0)
		holder_ttys_to_pty();
	forward_fds(&H.p, hd, H.pid, H.fifodir);
	mig_send(sock, MF_RESTORED, restore_ms, H.pid, NULL, 0); /* fd: how long the restore took, ms */
	/* Only now: freeing a large image's tmpfs pages takes a while, and
	 * the source keeps the process frozen until it hears the above. */
	mig_rm_rf(hd->dir);
	holder_loop();
	/* The migrant is gone (ended, killed, moved on): nothing to serve;
	 * if the lazy restore killed it, say why. */
	if (H.lz)
		lazy_end(H.lz, hd->id, H.pid);
	for (size_t i = 0; i < H.p.n; i++)
		if (H.p.p[i].fd >= 0)
			close(H.p.p[i].fd);
	if (H.slave >= 0)
		close(H.slave);
	/* Ghosts still waiting exit when they see us go (the migrant is
	 * gone, or runs elsewhere with ghosts of its own). */
	for (size_t g = 0; g < H.ng; g++)
		if (H.gfd[g] >= 0)
			close(H.gfd[g]);
	mig_rm_rf(H.fifodir);
	/* Siblings we adopted are our children still: we stay their parent
	 * (their getppid()) until they end, krgd done with us. */
	close(H.sock);
	mig_adopt_linger(&H.adopts);
	_exit(0);
}
