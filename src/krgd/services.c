/* services.c — krgd's one table of services (lib/service.h) and how it
 * runs them: ordered by what each needs, started in that order, stopped
 * in reverse, told of membership changes through one watch. A new
 * service is one line here (docs/architecture.md, "How to add a service"). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "api/server.h"
#include "cluster/cluster.h"
#include "dsm/dsm_svc.h"
#include "fsview/fsview.h"
#include "ipc/ipc_service.h"
#include "kdfs/kdfs.h"
#include "krgd/ipc_glue.h"
#include "krgd/services.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"
#include "proc/ckptsvc.h"
#include "proc/exec.h"
#include "proc/migrate.h"
#include "proc/schedsvc.h"
#include "proc/table.h"

/* In the order they start when their needs allow it (krg_service_order
 * keeps table order otherwise). */
static const struct krg_service *const table[] = {
	&krg_service_fsview,
	&krg_service_table,
	&krg_service_sched,
	&krg_service_ipc,
	&krg_service_dsm,
	&krg_service_ipc_intercept,
	&krg_service_exec,
	&krg_service_ckpt,
	&krg_service_migrate,
	&krg_service_kdfs,
};

static void on_node(struct krg_cluster *c, uint32_t node, enum krg_node_event ev, uint64_t epoch, void *data)
{
	struct krgd_services *rs = data;
	for (size_t k = 0; k < rs->n; k++) {
		size_t i = rs->order[k];
		if (!rs->live[i] || !rs->state[i])
			continue;
		const struct krg_service *sv = table[i];
		krg_service_node_fn fn = NULL;
		switch (ev) {
		case KRG_NODE_EV_ADD: fn = sv->node_add; break;
		case KRG_NODE_EV_UP: fn = sv->node_up; break;
		case KRG_NODE_EV_DOWN: fn = sv->node_down; break;
		case KRG_NODE_EV_REMOVE: fn = sv->node_remove; break;
		case KRG_NODE_EV_LEAVING: fn = sv->node_leaving; break;
		}
		if (fn)
			fn(rs->state[i], node, epoch);
	}
}

int krgd_services_init(struct krgd_services *rs, char *err, size_t errlen)
{
	_Static_assert(ARRAY_SIZE(table) <= KRGD_MAX_SERVICES, "KRGD_MAX_SERVICES is too small");
	rs->n = ARRAY_SIZE(table);
	int r = krg_service_order(table, rs->n, rs->order, err, errlen);
	if (r < 0)
		return r;
	if (rs->s.cluster && (r = krg_cluster_on_node(rs->s.cluster, on_node, rs)) < 0) {
		snprintf(err, errlen, "cannot watch the membership: %s", strerror(-r));
		return r;
	}
	for (size_t k = 0; k < rs->n; k++) {
		size_t i = rs->order[k];
		if (!table[i]->init)
			continue;
		if ((r = table[i]->init(&rs->s, &rs->state[i], err, errlen)) < 0)
			return r;
		rs->live[i] = true;
	}
	return 0;
}

/* The lists a service declares are what it registered: they stay true. */
static int check_registered(struct krgd_services *rs, const struct krg_service *sv, char *err, size_t errlen)
{
	for (const char *const *t = sv->msg_types; t && *t; t++)
		if (!krg_net_handled(rs->s.net, *t)) {
			snprintf(err, errlen, "service %s declares message type %s but did not register it", sv->name, *t);
			return -ENOENT;
		}
	for (const char *const *c = sv->api_cmds; c && *c; c++)
		if (!krg_api_registered(rs->s.api, *c)) {
			snprintf(err, errlen, "service %s declares API command %s but did not register it", sv->name, *c);
			return -ENOENT;
		}
	return 0;
}

int krgd_services_start(struct krgd_services *rs, char *err, size_t errlen)
{
	for (size_t k = 0; k < rs->n; k++) {
		size_t i = rs->order[k];
		const struct krg_service *sv = table[i];
		int r = sv->start(&rs->s, &rs->state[i], err, errlen);
		rs->started = k + 1;
		if (r < 0)
			return r;
		rs->live[i] = true;
		if (rs->state[i] && (r = check_registered(rs, sv, err, errlen)) < 0)
			return r;
		log_debug("service %s %s", sv->name, rs->state[i] ? "started" : "off");
	}
	return 0;
}

void krgd_services_stop(struct krgd_services *rs)
{
	while (rs->started > 0) {
		size_t i = rs->order[--rs->started];
		rs->live[i] = false;
		if (rs->state[i])
			table[i]->stop(rs->state[i]);
	}
}

void krgd_services_release(struct krgd_services *rs)
{
	for (size_t k = rs->n; k-- > 0;) {
		size_t i = rs->order[k];
		rs->live[i] = false;
		if (rs->state[i] && table[i]->release)
			table[i]->release(rs->state[i]);
		rs->state[i] = NULL;
	}
}
