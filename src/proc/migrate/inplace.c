/* inplace.c — a migrant coming back home is restored into its deputy
 * (docs/migration.md, "Back home"), so that it is the original process
 * again: same pid, same parent (whose wait() and getppid() see nothing
 * new), its children its own again, its real fds at their numbers, and
 * no deputy or holder left in between.
 *
 * The holder at home (holder.c) runs this first. Order:
 *   1. the image is verified, then MF_RESTORED answers with the deputy's
 *      pid: the source commits, drains what the migrant wrote (to the
 *      deputy, which writes it out) and tells home where it is; krgd told
 *      the deputy to stop reading the real fds already (MF_PAUSE);
 *   2. MF_GO: every byte of the old node's output is out. Input that the
 *      migrant had not read comes back to us before it; if any did, it
 *      cannot be put back into a pipe or socket at home: the process is
 *      restored beside the deputy as before (MF_RESUME to the deputy,
 *      and holder.c goes on with the frames kept here);
 *   3. MF_BECOME: the deputy writes out what it queued and answers
 *      MF_READY with its real fds; it then only waits;
 *   4. the checkpoint engine seizes it and rebuilds the process in it
 *      (ckpt_restore_opts.into), the real fds kept at the migrant's
 *      numbers; signals that came meanwhile are sent on, krgd forgets the
 *      deputy and us (MF_INPLACE).
 * A failure once the rebuild began kills the process (its old state is
 * gone): krgd's watch on the deputy reports it to the parent as killed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ckpt/ckpt.h"
#include "lib/log.h"
#include "proc/migrate/mig-int.h"
#include "proc/migrate/worker.h"

static void keep_frame(struct mig_inplace_left *left, const uint8_t *buf, size_t n)
{
	if (left->n == MIG_INPLACE_MAX_FRAMES)
		return;
	uint8_t *c = malloc(n);
	if (!c)
		return;
	memcpy(c, buf, n);
	left->f[left->n] = c;
	left->len[left->n++] = n;
}

/* Back to the old way: the deputy goes on, the process is restored beside it. */
static int beside(int sock, struct mig_inplace_left *left, const char *why, uint32_t id)
{
	log_info("migration of %u: restored beside its deputy, not into it: %s", id, why);
	mig_send(sock, MF_RESUME, 0, 0, NULL, 0);
	left->beside = true;
	return 1;
}

/* Still the deputy, running (not killed by a restore that failed half-way)? */
static bool untouched(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return false;
	return true;
}

int mig_inplace(int sock, const struct mig_hold *hd, struct mig_inplace_left *left)
{
	struct ckpt_error err = { 0 };
	pid_t pid = hd->into;
	if (ckpt_image_check(hd->dir, &err) < 0) {
		mig_send(sock, MF_ERR, 0, 0, err.msg, strlen(err.msg));
		return 0;
	}
	mig_send(sock, MF_RESTORED, 0, pid, NULL, 0);
	static uint8_t buf[sizeof(struct mig_hdr) + MIG_CHUNK + 64];
	uint64_t sigs = 0;
	int notify = -1;
	bool asked = false;
	char map[MIG_MAX_PROXIES * 24] = "";
	for (;;) {
		ssize_t n = recv(sock, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < (ssize_t)sizeof(struct mig_hdr)) {
			/* krgd is gone: the deputy dies with it too (its socket). */
			return 0;
		}
		struct mig_hdr h;
		memcpy(&h, buf, sizeof(h));
		/* Kept in order, for holder.c if it is restored beside after all. */
		if (h.type != MF_ACK && h.type != MF_READY)
			keep_frame(left, buf, (size_t)n);
		if (h.type == MF_SIG && h.arg > 0 && h.arg < 65) {
			/* For the process: it gets them once it is itself again. */
			sigs |= 1ULL << (h.arg - 1);
		} else if (h.type == MF_NOTIFY) {
			notify = (int)h.arg;
		} else if (h.type == MF_DATA || h.type == MF_EOF) {
			/* Input it had not read (or a stream's end): see above. */
			if (asked)
				return beside(sock, left, "input came back from its last node while it was handed over", hd->id);
		} else if (h.type == MF_GO) {
			left->go = true;
			bool input = false;
			for (size_t i = 0; i < left->n; i++) {
				struct mig_hdr k;
				memcpy(&k, left->f[i], sizeof(k));
				input |= k.type == MF_DATA || k.type == MF_EOF;
			}
			if (input)
				return beside(sock, left, "input it had not read came back from its last node", hd->id);
			if (left->n == MIG_INPLACE_MAX_FRAMES)
				return beside(sock, left, "too many frames came in the meantime", hd->id);
			/* Its fds that stand for one at home, and which way they go:
			 * one the deputy has no end of comes back at end of file or
			 * EPIPE (deputy.c, ready_fd). */
			char want[MIG_MAX_PROXIES * 16] = "";
			size_t wl = 0;
			for (size_t i = 0; i < hd->n && wl + 16 < sizeof(want); i++)
				wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s%d:%c:%d", wl ? " " : "", hd->num[i],
						       hd->reads[i] ? 'r' : 'w', hd->stype[i]);
			mig_send(sock, MF_BECOME, 0, 0, want, wl);
			asked = true;
		} else if (h.type == MF_READY && asked) {
			snprintf(map, sizeof(map), "%.*s", (int)((size_t)n - sizeof(h)), (const char *)buf + sizeof(h));
			break;
		}
		/* ACKs, the ended children's statuses (they are its own
		 * children again) and the rest are of no use here. */
	}
	/* The kept fds: the deputy's real ends, at the migrant's numbers. */
	int knum[CKPT_MAX_KEEP], kfd[CKPT_MAX_KEEP];
	size_t nk = 0;
	for (char *tok = strtok(map, " "); tok && nk < CKPT_MAX_KEEP; tok = strtok(NULL, " "))
		if (sscanf(tok, "%d:%d", &knum[nk], &kfd[nk]) == 2)
			nk++;
	for (size_t i = 0; i < hd->n; i++) {
		bool have = false;
		for (size_t k = 0; k < nk && !have; k++)
			have = knum[k] == hd->num[i];
		if (!have) {
			char why[96];
			snprintf(why, sizeof(why), "its deputy has no real end of fd %d any more", hd->num[i]);
			return beside(sock, left, why, hd->id);
		}
	}
	struct ckpt_restore_opts ro = { .into = pid, .keep_num = knum, .keep_fd = kfd, .n_keep = nk };
	struct mig_dsm dsm;
	ro.dsm = mig_dsm_init(&dsm, hd->isock);
	pid_t got;
	int r = ckpt_restore_opts(hd->dir, NULL, &ro, &got, &err);
	/* Its System V segments of the DSM: served by krgd from now. */
	if (r == 0 && mig_dsm_hand_over(&dsm) < 0) {
		snprintf(err.msg, sizeof(err.msg), "its System V segments cannot be served on this node (krgd's channel closed)");
		r = -EIO;
	}
	mig_dsm_done(&dsm);
	if (r < 0 && untouched(pid)) {
		/* The seizure failed (nothing was changed in it): as before. */
		char why[300];
		snprintf(why, sizeof(why), "%s", err.msg);
		return beside(sock, left, why, hd->id);
	}
	mig_rm_rf(hd->dir);
	if (r < 0) {
		log_error("migration of %u: restoring process %d into its deputy failed: %s", hd->id, (int)pid, err.msg);
		mig_send(sock, MF_ERR, 0, 0, err.msg, strlen(err.msg));
		return 0;
	}
	for (int s = 1; s <= 64; s++)
		if (sigs & (1ULL << (s - 1)))
			kill(pid, s);
	if (notify >= 0) {
		int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		int nfd = pfd >= 0 ? (int)syscall(SYS_pidfd_getfd, pfd, notify, 0) : -1;
		if (nfd >= 0) {
			ssize_t w = write(nfd, "0\n", 2);
			(void)w;
			close(nfd);
		}
		if (pfd >= 0)
			close(pfd);
	}
	log_info("migration of %u: back home in its own pid %d (restored into its deputy)", hd->id, (int)pid);
	mig_send(sock, MF_INPLACE, 0, pid, NULL, 0);
	return 0;
}
