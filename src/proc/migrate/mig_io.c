/* mig_io.c — a part of krgd's migration service (migsvc-int.h). */
#include "proc/migrate/migsvc-int.h"

/* ---- mig.io, mig.exit, mig.where, mig.go, mig.sig ---- */

static void mig_dispatch_io(uint32_t from, const char *type, const Krg__Mig__Io *io)
{
	if (!strcmp(type, "mig.io")) {
		uint8_t t = io->has_data ? MF_DATA : io->has_eof ? MF_EOF : MF_ACK;
		int64_t arg = io->has_ack ? io->ack : 0;
		size_t len = io->has_data ? io->data.len : 0;
		if (io->up && io->back) {
			/* Input the node it leaves did not deliver: for its next node
			 * (known at mig.where, which follows on the same channel);
			 * bounced later: to where it is now. */
			struct dep *d = mig_dep_by_id(io->id);
			if (!d || !io->has_data || !len) {
			} else if (from != d->node) {
				mig_send_data(d->node, io->id, io->fd, io->data, false);
			} else {
				struct backq *b = malloc(sizeof(*b) + len);
				if (b) {
					b->next = NULL;
					b->fd = io->fd;
					b->len = len;
					memcpy(b->data, io->data.data, len);
					if (d->bt)
						d->bt->next = b;
					else
						d->bh = b;
					d->bt = b;
				}
			}
		} else if (io->up) {
			/* From the migrant's side to the deputy. */
			struct dep *d = mig_dep_by_id(io->id);
			if (d && from == d->node)
				mig_dep_to(d, t, (int32_t)io->fd, arg, io->data.data, len);
		} else {
			struct hold *h = mig_hold_by_id(io->id);
			if (h && h->c && from == h->home) {
				mig_conn_send(h->c, t, (int32_t)io->fd, arg, io->data.data, len);
			} else if (!h && io->has_data && len && from == krg_procid_home(io->id)) {
				/* It left (or is leaving): the input goes back home. */
				mig_send_data(from, io->id, io->fd, io->data, true);
			}
		}
	} else if (!strcmp(type, "mig.exit")) {
		struct dep *d = mig_dep_by_id(io->id);
		if (d && io->has_status)
			mig_dep_exit(d, io->status);
	} else if (!strcmp(type, "mig.where")) {
		struct dep *d = mig_dep_by_id(io->id);
		if (d && io->has_node) {
			d->node = io->node;
			log_info("migrate: %u now runs on node %u", d->id, d->node);
			while (d->bh) {
				struct backq *b = d->bh;
				d->bh = b->next;
				Krg__Mig__Io o = KRG__MIG__IO__INIT;
				o.id = d->id;
				o.has_fd = true;
				o.fd = b->fd;
				o.has_data = true;
				o.data.data = b->data;
				o.data.len = b->len;
				mig_send_io(d->node, "mig.io", &o, true);
				free(b);
			}
			d->bt = NULL;
			mig_send_simple(d->node, "mig.go", d->id, 0, false, 0, UINT32_MAX);
			mig_dep_send_ended(d);
			uint64_t sigs = (io->has_signals ? io->signals : 0) | d->sig_back;
			d->sig_back = 0;
			for (int sig = 1; sig <= 64; sig++)
				if (sigs & (1ULL << (sig - 1)))
					mig_send_simple(d->node, "mig.sig", d->id, sig, false, 0, UINT32_MAX);
		}
	} else if (!strcmp(type, "mig.go")) {
		struct hold *h = mig_hold_by_id(io->id);
		if (h)
			mig_conn_send(h->c, MF_GO, 0, 0, NULL, 0);
	} else if (!strcmp(type, "mig.sig") && io->has_child) {
		/* About a child left at home: from the host, a signal for it
		 * (the deputy, its parent, sends it); from home, how it ended. */
		struct dep *d = mig_dep_by_id(io->id);
		struct hold *h = mig_hold_by_id(io->id);
		if (d && from == d->node && io->has_signal && io->signal > 0 && io->signal < 65 && io->child <= INT32_MAX)
			mig_dep_to(d, MF_KID_SIG, (int32_t)io->child, io->signal, NULL, 0);
		else if (h && from == h->home && io->has_status && io->child <= INT32_MAX)
			mig_conn_send(h->c, MF_KID_EXIT, (int32_t)io->child, io->status, NULL, 0);
	} else if (!strcmp(type, "mig.sig") && io->up && io->back) {
		/* Home: a signal it sent to a node the migrant had just left,
		 * bounced. Before mig.where from that node: kept for the next
		 * node; after: sent there now. */
		struct dep *d = mig_dep_by_id(io->id);
		if (d && io->has_signal && io->signal > 0 && io->signal < 65) {
			if (from == d->node)
				d->sig_back |= 1ULL << (io->signal - 1);
			else
				mig_send_simple(d->node, "mig.sig", d->id, io->signal, false, 0, UINT32_MAX);
		}
	} else if (!strcmp(type, "mig.sig")) {
		struct hold *h = mig_hold_by_id(io->id);
		if (io->has_signal && io->signal > 0 && io->signal < 65 && (!h || h->drained) && from == krg_procid_home(io->id)) {
			/* It left (or is leaving) this node: back home with it. */
			Krg__Mig__Io o = KRG__MIG__IO__INIT;
			o.id = io->id;
			o.has_signal = true;
			o.signal = io->signal;
			o.has_up = o.up = true;
			o.has_back = o.back = true;
			mig_send_io(from, "mig.sig", &o, false);
			return;
		}
		if (h && io->has_winsize)
			mig_conn_send(h->c, MF_WINSZ, 0, io->winsize, NULL, 0);
		if (h && io->has_signal && io->signal > 0 && io->signal < 65 && io->has_sq_code && io->sq_code < 0) {
			uint8_t q[MIG_SIGINFO_LEN];
			mig_siginfo_put(q, &(struct mig_siginfo){ .code = io->sq_code, .pid = io->has_sq_pid ? io->sq_pid : 0,
								  .uid = io->has_sq_uid ? io->sq_uid : 0, .value = io->has_sq_value ? io->sq_value : 0 });
			mig_conn_send(h->c, MF_SIG, 0, io->signal, q, sizeof(q));
		} else if (h && io->has_signal && io->signal > 0 && io->signal < 65) {
			mig_conn_send(h->c, MF_SIG, 0, io->signal, NULL, 0);
		}
	}
}

void mig_on_net_io(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	if (!the_mig.running)
		return;
	Krg__Mig__Io *io = krg__mig__io__unpack(NULL, msg->len, msg->body);
	if (!io || !mig_io_valid(io)) {
		log_warn("migrate: malformed %.16s from node %u, dropped", msg->type, from);
	} else {
		/* Only the nodes concerned may speak about a process; this node
		 * itself (the deputy and the migrant both here, or one moving
		 * here) is one of them. */
		struct dep *d = mig_dep_by_id(io->id);
		struct hold *h = mig_hold_by_id(io->id);
		/* An orphan (orphan.c) has no home but this node: what its old
		 * home says (it was cut off, not dead) is refused. */
		bool ok = from == the_mig.self || (d && from == d->node) || (h && !h->orphan && from == h->home) ||
			  (d && io->up && io->back) ||                                            /* returned input */
			  (!h && !io->up && (!strcmp(msg->type, "mig.io") || !strcmp(msg->type, "mig.sig")) &&
			   from == krg_procid_home(io->id)); /* to bounce */
		if (ok)
			mig_dispatch_io(from, msg->type, io);
		else
			log_debug("migrate: %s about %u from node %u ignored", msg->type, io->id, from);
	}
	if (io)
		krg__mig__io__free_unpacked(io, NULL);
}
