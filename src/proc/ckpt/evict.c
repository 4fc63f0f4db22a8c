/* evict.c — eviction of a process that may not migrate but may be
 * checkpointed (docs/reconfiguration.md, "Eviction"): while its node
 * leaves, the scheduler's leave hook asks for it through the services'
 * evict_ckpt hook. The process is dumped with kill into this node's
 * store (kdfs when mounted), as `krg checkpoint ID --kill` does, and the
 * target node restores it, as `krg restart ID -n NODE` does: in place
 * from kdfs, else from a copy sent to it. Its image id is its cluster id; the restored process gets an id
 * of its new node (restart gives ids, as periodic.c's recovery). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ckptsvc-int.h"
#include "ckpt/store.h"
#include "lib/log.h"

/* One eviction in flight, listed in c->evicting from the request until
 * the process is restarted elsewhere, or until the scheduler's next
 * request was told that its checkpoint failed: the scheduler asks again
 * for a process it still sees after EVICT_RETRY_MS, and a dump of a
 * large process with kill can take longer; a second request would
 * checkpoint it twice. */
struct evicting {
	struct evicting *next;
	struct krg_ckptsvc *c;
	uint32_t id, to;
	int failed;             /* the checkpoint's -errno, kept for the next request */
	char why[160];
};
#define ev evicting

static void unlist(struct ev *e)
{
	for (struct ev **p = &e->c->evicting; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	free(e);
}

static void restored(void *data, int status, const char *text, const void *result, size_t len)
{
	struct ev *e = data;
	uint32_t nid = ckptsvc_result_id(status, result, len);
	if (status < 0)
		log_error("evict: %u was checkpointed but cannot be restarted on node %u: %s; its image stays in %s",
			  e->id, e->to, text, krg_ckpt_store());
	else
		log_info("evict: %u restarted on node %u as %u from its checkpoint", e->id, e->to, nid);
	unlist(e);
}

static void dumped(void *data, int status, const char *text, const void *result, size_t len)
{
	(void)result;
	(void)len;
	struct ev *e = data;
	const char *v = status == 0 ? strrchr(text, '/') : NULL;
	if (status == 0 && (!v || v[1] != 'v')) {
		status = -EIO;
		text = "no image version in the checkpoint worker's answer";
	}
	if (status < 0) {
		log_warn("evict: cannot checkpoint %u to restart it elsewhere: %s", e->id, text);
		e->failed = status;
		snprintf(e->why, sizeof(e->why), "%s", text);
		return;
	}
	Krg__Ckptsvc__Restart q = KRG__CKPTSVC__RESTART__INIT;
	q.appid = e->id;
	q.has_version = true;
	q.version = (uint32_t)strtoul(v + 2, NULL, 10);
	q.has_node = true;
	q.node = e->to;
	/* Its queues and semaphore sets outlived it (its node handed them
	 * over as it left): the restart keeps them, with what was sent since. */
	q.has_sysv_keep = q.sysv_keep = true;
	log_info("evict: %u checkpointed (v%u) and ended here; restarting it on node %u", e->id, q.version, e->to);
	struct krg_origin o = { .cb = restored, .cb_data = e };
	/* In kdfs the target reads it in place; else it gets a copy. */
	int rc = krg_ckpt_store_in_kdfs(text) ? ckptsvc_restart_on(e->c, o, e->id, q.version, e->to, true)
					      : ckptsvc_copy(e->c, o, &q, 0, false);
	if (rc < 0)
		restored(e, rc, strerror(-rc), NULL, 0);
}

int ckptsvc_evict(void *data, uint32_t id, uint32_t to, char *err, size_t errlen)
{
	struct krg_ckptsvc *c = data;
	snprintf(err, errlen, "checkpoint service stopped");
	if (!c || !c->running)
		return -ESHUTDOWN;
	for (struct ev *p = c->evicting; p; p = p->next) {
		if (p->id != id)
			continue;
		if (!p->failed)
			return -EINPROGRESS;
		int r = p->failed;
		snprintf(err, errlen, "%s", p->why);
		unlist(p);
		return r;
	}
	struct ev *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	*e = (struct ev){ .next = c->evicting, .c = c, .id = id, .to = to };
	c->evicting = e;
	Krg__Ckptsvc__Dump d = KRG__CKPTSVC__DUMP__INIT;
	d.id = id;
	d.has_kill = d.kill = true;
	d.description = "eviction of its node";
	struct krg_origin o = { .cb = dumped, .cb_data = e };
	/* krgd's own work for the node's removal, which root asked for. */
	int rc = ckptsvc_dump_local(c, o, &d, 0);
	if (rc < 0 && e->failed) {
		/* Answered (dumped) before returning: told now. */
		snprintf(err, errlen, "%s", e->why);
		unlist(e);
	} else if (rc < 0) {
		snprintf(err, errlen, "%s", strerror(-rc));
		c->evicting = e->next;  /* o not answered: e is still first */
		free(e);
	}
	return rc;
}
