/* intercept_local.c — the listener's backend with one IPC engine on this
 * node (intercept_svc.h): every object lives here, waiters are parked in
 * the engine under the listener's tokens. The engine's completion
 * callback may not re-enter it, so completions are queued and handed to
 * the listener once the engine call that produced them has returned. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ipc/intercept_svc.h"
#include "lib/log.h"

#define NBUCKET 256

struct waiter {                   /* a call parked in the engine */
	struct waiter *next;
	uint64_t token;
	krg_intercept_done_fn done;
	void *cookie;
	const struct krg_ipc_caller *who;  /* borrowed from the listener until done or cancel */
	const struct krg_ipc_req *req;
};

struct completion {               /* a waiter's reply, not handed out yet */
	struct completion *next;
	uint64_t token;
	struct krg_ipc_reply reply;
};

struct krg_intercept_local {
	struct krg_ipc_engine *e;
	uv_timer_t tick;              /* semtimedop deadlines */
	struct waiter *w[NBUCKET];
	struct completion *q_head, *q_tail;
	uint64_t (*proc_id)(void *data, pid_t tgid);
	void *proc_id_data;
	bool draining;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct waiter *waiter_take(struct krg_intercept_local *lb, uint64_t token)
{
	for (struct waiter **p = &lb->w[token % NBUCKET]; *p; p = &(*p)->next)
		if ((*p)->token == token) {
			struct waiter *w = *p;
			*p = w->next;
			return w;
		}
	return NULL;
}

/* Inside the engine: queue only. */
static void complete_cb(void *data, uint64_t token, struct krg_ipc_reply *reply)
{
	struct krg_intercept_local *lb = data;
	struct completion *c = calloc(1, sizeof(*c));
	if (!c) {
		/* Cannot happen short of OOM; the caller's syscall stays until
		 * a signal, and the engine's state stays as the call left it. */
		log_error("ipc local: out of memory queueing a completion");
		krg_ipc_reply_release(reply);
		return;
	}
	c->token = token;
	c->reply = *reply;  /* takes its buffers */
	if (lb->q_tail)
		lb->q_tail->next = c;
	else
		lb->q_head = c;
	lb->q_tail = c;
}

static void arm_tick(struct krg_intercept_local *lb);

/* After every engine entry point: hand the queued replies out. A done
 * callback may call undeliverable (the engine again), which may queue
 * more: the loop takes those too. */
static void drain(struct krg_intercept_local *lb)
{
	if (lb->draining)
		return;
	lb->draining = true;
	while (lb->q_head) {
		struct completion *c = lb->q_head;
		lb->q_head = c->next;
		if (!lb->q_head)
			lb->q_tail = NULL;
		struct waiter *w = waiter_take(lb, c->token);
		if (w)
			w->done(w->cookie, &c->reply);
		else
			krg_ipc_reply_release(&c->reply);
		free(w);
		free(c);
	}
	lb->draining = false;
	arm_tick(lb);
}

static void tick_cb(uv_timer_t *t)
{
	struct krg_intercept_local *lb = t->data;
	krg_ipc_engine_tick(lb->e, now_ns());
	drain(lb);
}

static void arm_tick(struct krg_intercept_local *lb)
{
	uint64_t d = krg_ipc_engine_next_deadline(lb->e);
	if (d == UINT64_MAX) {
		uv_timer_stop(&lb->tick);
		return;
	}
	uint64_t now = now_ns();
	uint64_t ms = d > now ? (d - now + 999999) / 1000000 : 0;
	uv_timer_start(&lb->tick, tick_cb, ms, 0);
}

static int l_submit(void *ctx, const struct krg_ipc_caller *who, const struct krg_ipc_req *req, uint64_t token,
		    krg_intercept_done_fn done, void *cookie)
{
	struct krg_intercept_local *lb = ctx;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	struct krg_ipc_reply reply;
	memset(&reply, 0, sizeof(reply));
	int r = krg_ipc_engine_call(lb->e, who, req, token, now_ns(), &reply);
	if (r < 0) {
		free(w);
		drain(lb);
		return r;
	}
	if (r == KRG_IPC_PENDING) {
		*w = (struct waiter){ .token = token, .done = done, .cookie = cookie, .who = who, .req = req };
		w->next = lb->w[token % NBUCKET];
		lb->w[token % NBUCKET] = w;
		drain(lb);
		return 0;
	}
	free(w);
	done(cookie, &reply);
	drain(lb);
	return 0;
}

static void l_cancel(void *ctx, uint64_t token)
{
	struct krg_intercept_local *lb = ctx;
	struct waiter *w = waiter_take(lb, token);
	if (!w)
		return;
	if (krg_ipc_engine_cancel(lb->e, token) == -EALREADY) {
		/* Completed, its reply still queued: undo it now, while the
		 * listener's request is still there to name what to undo. */
		for (struct completion **p = &lb->q_head, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
			struct completion *c = *p;
			if (c->token != token)
				continue;
			*p = c->next;
			if (lb->q_tail == c)
				lb->q_tail = prev;
			if (c->reply.ret >= 0)
				krg_ipc_engine_undeliverable(lb->e, w->who, w->req, &c->reply, now_ns());
			krg_ipc_reply_release(&c->reply);
			free(c);
			break;
		}
	}
	free(w);
	drain(lb);
}

static void l_undeliverable(void *ctx, const struct krg_ipc_caller *who, const struct krg_ipc_req *req,
			    const struct krg_ipc_reply *reply)
{
	struct krg_intercept_local *lb = ctx;
	krg_ipc_engine_undeliverable(lb->e, who, req, reply, now_ns());
	drain(lb);
}

static void l_process_exit(void *ctx, uint64_t proc_id, int32_t pid)
{
	struct krg_intercept_local *lb = ctx;
	krg_ipc_engine_process_exit(lb->e, proc_id, pid, now_ns());
	drain(lb);
}

static uint64_t l_proc_id(void *ctx, pid_t tgid)
{
	struct krg_intercept_local *lb = ctx;
	return lb->proc_id ? lb->proc_id(lb->proc_id_data, tgid) : (uint64_t)tgid;
}

static const struct krg_intercept_backend local_backend = {
	.version = KRG_INTERCEPT_BACKEND_V1,
	.name = "local engine",
	.submit = l_submit,
	.cancel = l_cancel,
	.undeliverable = l_undeliverable,
	.process_exit = l_process_exit,
	.proc_id = l_proc_id,
};

const struct krg_intercept_backend *krg_intercept_local_backend(void)
{
	return &local_backend;
}

int krg_intercept_local_new(uv_loop_t *loop, uint64_t (*proc_id)(void *data, pid_t tgid), void *data,
			    struct krg_intercept_local **out)
{
	struct krg_intercept_local *lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	struct krg_ipc_limits lim;
	krg_ipc_limits_default(&lim);
	int r = krg_ipc_limits_read(&lim, "/proc/sys/kernel");
	if (r < 0)
		log_warn("ipc local: /proc/sys/kernel IPC limits: %s (Linux's defaults used)", strerror(-r));
	lb->e = krg_ipc_engine_new(&lim, complete_cb, lb);
	if (!lb->e) {
		free(lb);
		return -ENOMEM;
	}
	lb->proc_id = proc_id;
	lb->proc_id_data = data;
	uv_timer_init(loop, &lb->tick);
	lb->tick.data = lb;
	*out = lb;
	return 0;
}

static void tick_closed(uv_handle_t *h)
{
	free(h->data);
}

void krg_intercept_local_free(struct krg_intercept_local *lb)
{
	if (!lb)
		return;
	for (size_t i = 0; i < NBUCKET; i++)
		while (lb->w[i]) {
			struct waiter *w = lb->w[i];
			lb->w[i] = w->next;
			free(w);
		}
	while (lb->q_head) {
		struct completion *c = lb->q_head;
		lb->q_head = c->next;
		krg_ipc_reply_release(&c->reply);
		free(c);
	}
	krg_ipc_engine_free(lb->e);
	uv_close((uv_handle_t *)&lb->tick, tick_closed);
}
