/* dsm_follow.c — a migrant's System V segments of the DSM, re-attached on
 * the target (docs/dsm.md, "Migration of an attached process"; worker.h). Runs in
 * the holder (a child of krgd) while it restores the migrant: the image
 * names each segment (VMA_DSM) but holds none of its pages, which stay in
 * the DSM; this node's object of the segment comes from krgd ('S' on the
 * intercept channel, ipc/intercept.h) and the restore maps it where the
 * process had it. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ipc/intercept.h"
#include "lib/log.h"
#include "proc/migrate/worker.h"

/* How long krgd may take to make a segment's object (its loop may be busy
 * with a large migration's pages): the restore fails after that. */
#define DSM_ANSWER_MS 10000

static int seg_fd(void *ctx, uint64_t seg, uint64_t npages)
{
	struct mig_dsm *d = ctx;
	for (size_t i = 0; i < d->nfds; i++)
		if (d->segs[i] == seg)
			return d->fds[i];
	if (d->nfds == MIG_DSM_MAX_SEGS)
		return -E2BIG;
	struct krg_intercept_dsm_msg q = { .seg = seg, .npages = npages };
	int r = krg_intercept_send_msg(d->sock, 'S', &q, sizeof(q), -1);
	if (r < 0)
		return r;
	struct pollfd pf = { .fd = d->sock, .events = POLLIN };
	int n;
	do
		n = poll(&pf, 1, DSM_ANSWER_MS);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : -ETIMEDOUT;
	char tag;
	struct krg_intercept_dsm_msg a;
	size_t len;
	int fd;
	r = krg_intercept_recv_msg(d->sock, false, &tag, &a, sizeof(a), &len, &fd);
	if (r == 0 && (tag != 'S' || len != sizeof(a) || a.seg != seg || (a.ret == 0) != (fd >= 0)))
		r = -EBADMSG;
	else if (r == 0 && a.ret < 0)
		r = a.ret;
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	d->segs[d->nfds] = seg;
	d->fds[d->nfds++] = fd;
	return fd;
}

struct ckpt_dsm_hooks *mig_dsm_init(struct mig_dsm *d, int isock)
{
	memset(d, 0, sizeof(*d));
	d->sock = isock;
	d->hooks.segment = seg_fd;
	d->hooks.ctx = d;
	return isock >= 0 ? &d->hooks : NULL;
}

int mig_dsm_hand_over(struct mig_dsm *d)
{
	int r = 0;
	for (size_t i = 0; i < d->hooks.n && r == 0; i++) {
		struct ckpt_dsm_attach *a = &d->hooks.out[i];
		struct krg_intercept_dsm_msg m = { .seg = a->seg, .npages = a->npages, .addr = a->addr, .len = a->len,
						   .pid = a->pid, .prot = a->prot };
		/* Not handed over, its mapping would be served by nobody: the
		 * caller fails the migration (the migrant dies with the holder). */
		r = krg_intercept_send_msg(d->sock, 'D', &m, sizeof(m), a->uffd);
		if (r < 0)
			log_error("migrate: pid %d: its System V segment %d cannot be served here: %s", (int)a->pid,
				  (int)(a->seg >> 32), strerror(-r));
	}
	return r;
}

void mig_dsm_done(struct mig_dsm *d)
{
	for (size_t i = 0; i < d->hooks.n; i++)
		if (d->hooks.out[i].uffd >= 0)
			close(d->hooks.out[i].uffd);
	free(d->hooks.out);
	d->hooks.out = NULL;
	d->hooks.n = 0;
	for (size_t i = 0; i < d->nfds; i++)
		close(d->fds[i]);
	d->nfds = 0;
}
