/* intercept_futex.c — futexes in System V segments shared across nodes
 * (docs/dsm.md, "Futexes"): WAIT held here for a few ms at a time, WAKE
 * served here and passed to every node through the DSM. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <uv.h>
#include "ipc/intercept_svc-int.h"
#include "lib/log.h"

#define F_WAIT 0
#define F_WAKE 1
#define F_WAIT_BITSET 9
#define F_WAKE_BITSET 10
#define F_CMD_MASK 0x7f               /* without FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME */

static void futex_timer_cb(uv_timer_t *t)
{
	struct krg_intercept *in = t->data;
	uint64_t now = uv_now(in->loop);
	for (struct fwait **p = &in->fwaits; *p;) {
		struct fwait *w = *p;
		if (w->until > now && w->l && isvc_id_valid(w->l->fd, w->id)) {
			p = &w->next;
			continue;
		}
		if (w->l)
			isvc_send_resp(in, w->l->fd, w->id, 0);
		*p = w->next;
		free(w);
	}
	if (!in->fwaits)
		uv_timer_stop(t);
}

/* Wake up to n waits held here on (seg, off) whose bitset meets bits. */
static int futex_wake_here(struct krg_intercept *in, uint64_t seg, uint64_t off, uint32_t bits, int n)
{
	int k = 0;
	for (struct fwait **p = &in->fwaits; *p && k < n;) {
		struct fwait *w = *p;
		if (w->seg != seg || w->off != off || !(w->bitset & bits)) {
			p = &w->next;
			continue;
		}
		if (w->l && isvc_send_resp(in, w->l->fd, w->id, 0) == 0)
			k++;
		*p = w->next;
		free(w);
	}
	return k;
}

void krg_intercept_futex_wake(struct krg_intercept *in, uint64_t seg, uint64_t off, uint32_t bits)
{
	if (in && !in->stopping)
		futex_wake_here(in, seg, off, bits, INT32_MAX);
}

static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	pid_t tgid = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	if (f)
		fclose(f);
	return tgid;
}

/* A futex call without FUTEX_PRIVATE_FLAG. Not on a segment attached
 * through the DSM: the kernel runs it. On one: WAIT and WAKE (and their
 * bitset forms) are served across nodes; the other operations (requeue,
 * wake-op, priority inheritance) are refused by name with ENOSYS. */
void isvc_futex_serve(struct lsn *l, const struct seccomp_notif *n)
{
	struct krg_intercept *in = l->in;
	uint64_t uaddr = n->data.args[0];
	int cmd = (int)(n->data.args[1] & F_CMD_MASK);
	const struct ishm_att *a = NULL;
	if (in->shm_ops)
		for (const struct ishm_att *x = in->shm_att; x; x = x->next)
			if (x->view >= 0 && uaddr >= x->addr && uaddr - x->addr < x->size) {
				a = x;
				break;
			}
	pid_t tgid = a ? tgid_of((pid_t)n->pid) : -1;
	if (a && a->tgid != tgid) {
		a = NULL;
		for (const struct ishm_att *x = in->shm_att; x; x = x->next)
			if (x->tgid == tgid && x->view >= 0 && uaddr >= x->addr && uaddr - x->addr < x->size)
				a = x;
	}
	if (!a) {
		isvc_send_continue(in, l->fd, n->id);
		return;
	}
	uint64_t off = uaddr - a->addr;
	uint32_t bits = cmd == F_WAIT_BITSET || cmd == F_WAKE_BITSET ? (uint32_t)n->data.args[5] : UINT32_MAX;
	if ((cmd == F_WAIT_BITSET || cmd == F_WAKE_BITSET) && !bits) {
		isvc_send_resp(in, l->fd, n->id, -EINVAL);
		return;
	}
	if (cmd == F_WAIT || cmd == F_WAIT_BITSET) {
		struct fwait *w = calloc(1, sizeof(*w));
		if (!w) {
			isvc_send_resp(in, l->fd, n->id, -ENOMEM);
			return;
		}
		*w = (struct fwait){ in->fwaits, l, n->id, (pid_t)n->pid, a->seg, off, bits,
				     uv_now(in->loop) + FUTEX_HOLD_MS };
		in->fwaits = w;
		in->st.futex_held++;
		if (!uv_is_active((uv_handle_t *)&in->ftimer))
			uv_timer_start(&in->ftimer, futex_timer_cb, 1, 1);
		return;
	}
	if (cmd == F_WAKE || cmd == F_WAKE_BITSET) {
		int k = futex_wake_here(in, a->seg, off, bits, (int)n->data.args[2]);
		in->shm_ops->futex_wake(in->shm_ctx, a->seg, off, bits);
		in->st.futex_woken++;
		isvc_send_resp(in, l->fd, n->id, k);
		return;
	}
	in->st.futex_refused++;
	log_warn("ipc intercept: thread %d: futex operation %d on System V segment %d refused (ENOSYS): only "
		 "FUTEX_WAIT and FUTEX_WAKE (and their bitset forms) are served across nodes (docs/dsm.md)",
		 (int)n->pid, cmd, (int)a->id);
	isvc_send_resp(in, l->fd, n->id, -ENOSYS);
}

