/* ipc_service_usage.c — msgmni, semmni and semmns on the cluster's total.
 *
 * Every node tells every other how many queues, sets and semaphores its
 * engine holds whenever that changes (a one-way "ipc.node" notify), and
 * hands the sum of what the others said to its engine, which counts it
 * with its own when it creates an object (krg_ipc_engine_set_others).
 * Creations are not serialised cluster-wide: two created on different
 * nodes within one message's flight may both pass the last free slot. A
 * node that goes away stops counting; a new one is told everything. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ipc_service-int.h"
#include "lib/log.h"

/* The engine is given the sum over the live nodes but this one. */
static void give_engine(struct krg_ipc_service *svc)
{
	const struct krg_nodeset *live = kddm_live(svc->k);
	uint32_t self = kddm_self(svc->k);
	uint64_t msq = 0, sem = 0, semtot = 0;
	for (unsigned n = 0; n < KRG_MAX_NODES; n++)
		if (n != self && krg_nodeset_has(live, n)) {
			msq += svc->peer[n].msq;
			sem += svc->peer[n].sem;
			semtot += svc->peer[n].semtot;
		}
	krg_ipc_engine_set_others(svc->eng, msq > UINT32_MAX ? UINT32_MAX : (uint32_t)msq,
				  sem > UINT32_MAX ? UINT32_MAX : (uint32_t)sem, semtot);
}

void ipc_usage_sync(struct krg_ipc_service *svc)
{
	if (!svc->eng || !svc->nodes)
		return;
	const struct krg_nodeset *live = kddm_live(svc->k);
	bool changed = memcmp(live, &svc->usage_live, sizeof(*live)) != 0;
	if (changed) {
		/* Who left stops counting; who came must hear from us. */
		for (unsigned n = 0; n < KRG_MAX_NODES; n++)
			if (!krg_nodeset_has(live, n))
				memset(&svc->peer[n], 0, sizeof(svc->peer[n]));
		svc->usage_live = *live;
		svc->usage_sent_ok = false;
		give_engine(svc);
	}
	struct krg_ipc_usage u;
	krg_ipc_engine_usage(svc->eng, &u);
	/* A queue counts at its home wherever it is served (a move is not
	 * news to the others). */
	u.msq_count = u.msq_count + svc->moved_out >= svc->owned_n ? u.msq_count + svc->moved_out - svc->owned_n : 0;
	if (svc->usage_sent_ok && u.msq_count == svc->usage_sent.msq && u.sem_count == svc->usage_sent.sem &&
	    u.sem_total == svc->usage_sent.semtot)
		return;
	int64_t f[3] = { u.msq_count, u.sem_count, (int64_t)u.sem_total };
	Krg__Ipc__Answer a = KRG__IPC__ANSWER__INIT;
	a.n_usage = 3;
	a.usage = f;
	size_t len = krg__ipc__answer__get_packed_size(&a);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return; /* tried again at the next change or tick */
	krg__ipc__answer__pack(&a, buf);
	uint32_t self = kddm_self(svc->k);
	for (unsigned n = 0; n < KRG_MAX_NODES; n++)
		if (n != self && krg_nodeset_has(live, n))
			kddm_notify(svc->nodes, n, IPC_USAGE_NOTIFY | n, buf, len);
	free(buf);
	svc->usage_sent.msq = u.msq_count;
	svc->usage_sent.sem = u.sem_count;
	svc->usage_sent.semtot = u.sem_total;
	svc->usage_sent_ok = true;
}

void ipc_usage_in(struct krg_ipc_service *svc, uint32_t from, const uint8_t *in, size_t len)
{
	Krg__Ipc__Answer *a = krg__ipc__answer__unpack(NULL, len, in);
	if (!a || a->n_usage != 3 || from >= KRG_MAX_NODES || a->usage[0] < 0 || a->usage[1] < 0 ||
	    a->usage[2] < 0) {
		log_warn("ipc: node %u sent a malformed usage", from);
	} else {
		svc->peer[from].msq = (uint32_t)(a->usage[0] > UINT32_MAX ? UINT32_MAX : a->usage[0]);
		svc->peer[from].sem = (uint32_t)(a->usage[1] > UINT32_MAX ? UINT32_MAX : a->usage[1]);
		svc->peer[from].semtot = (uint64_t)a->usage[2];
		give_engine(svc);
	}
	if (a)
		krg__ipc__answer__free_unpacked(a, NULL);
}
