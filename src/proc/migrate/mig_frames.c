/* mig_frames.c — a part of krgd's migration service (migsvc-int.h). */
#include "proc/migrate/migsvc-int.h"

/* ---- frames from deputies, holders, workers ---- */

static void io_from_local(uint32_t to, uint32_t id, bool up, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	io.id = id;
	io.has_up = io.up = up;
	io.has_fd = true;
	io.fd = (uint32_t)h->fd;
	if (h->type == MF_DATA)
		io.has_data = true, io.data.data = (uint8_t *)data, io.data.len = len, io.has_ack = h->arg != 0,
		io.ack = (uint32_t)h->arg; /* 1: a socket's message goes on in the next one */
	else if (h->type == MF_EOF)
		io.has_eof = io.eof = true, io.has_ack = h->arg != 0, io.ack = (uint32_t)h->arg; /* 1: a socket shut, not closed */
	else
		io.has_ack = true, io.ack = (uint32_t)h->arg;
	mig_send_io(to, "mig.io", &io, true);
}

void mig_hello(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	struct ucred cr;
	socklen_t sl = sizeof(cr);
	struct dep *d = mig_dep_by_id((uint32_t)h->arg);
	if (h->type != MF_HELLO || len != 16 || !d || d->c || getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) < 0 ||
	    cr.pid != d->pid || memcmp(d->token, data, 16)) {
		log_warn("migrate: refused a deputy connection (pid %d)", (int)cr.pid);
		mig_conn_close(c);
		return;
	}
	c->kind = CK_DEPUTY;
	mig_hello_deadline_stop(c);
	if (the_mig.npending)
		the_mig.npending--;
	c->owner = d;
	d->c = c;
	mig_dep_flush_pending(d);
}

/* MF_COPY: a pre-copied range to read from the process itself (the
 * worker leaves it as a hole in its file). */
static void worker_copy(struct move *v, const uint8_t *data)
{
	struct mig_copy cp;
	memcpy(&cp, data, sizeof(cp));
	if (cp.addr % 4096 || cp.len % 4096 || cp.off > XFER_MAX || cp.len > XFER_MAX)
		return;
	if (!v->direct) {
		/* The worker's file, to check at the end that the dump
		 * went on with it (same inode, holes where we copied). */
		char path[600];
		if (v->early_fd >= 0)
			close(v->early_fd);  /* found by mig_early_pump: nothing was written to it */
		snprintf(v->early_name, sizeof(v->early_name), "pages-%d.img", (int)v->pid);
		snprintf(path, sizeof(path), "%s/.%s.tmp", v->dir, v->early_name);
		struct stat st;
		v->early_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (v->early_fd < 0 || fstat(v->early_fd, &st) < 0) {
			v->early_bad = true;
			return;
		}
		v->early_ino = st.st_ino;
		v->early_off = 64;
		v->direct = true;
	}
	if (v->cq_n == v->cq_cap) {
		size_t nc = v->cq_cap ? 2 * v->cq_cap : 64;
		struct mig_copy *q = realloc(v->cq, nc * sizeof(*q));
		if (!q) {
			v->early_bad = true;
			return;
		}
		v->cq = q;
		v->cq_cap = nc;
	}
	v->cq[v->cq_n++] = cp;
	mig_early_pump(v);
}

/* MF_DONE: the worker made the original the deputy (or killed it, or
 * thawed it): answer the move with its figures. */
static void worker_done(struct move *v, struct conn *c)
{
	v->w = NULL;
	mig_conn_close(c);
	if (v->phase == MOVE_COMMITTED) {
		if (!v->here) {
			mig_send_simple(v->to, "mig.go", v->id, 0, false, 0, UINT32_MAX);
			struct dep *d = mig_dep_by_id(v->id);
			if (d)
				mig_dep_send_ended(d);
		}
		uint64_t now = uv_now(the_mig.s->loop);
		uint64_t fz = v->t_frozen ? v->t_frozen : v->t_start;
		snprintf(v->stats, sizeof(v->stats),
			 "%llu MiB: total %llu ms, frozen %llu ms (pre-copy %u rounds, dump %llu ms, transfer %llu ms, restore %u ms)",
			 (unsigned long long)(v->bytes >> 20), (unsigned long long)(now - v->t_start),
			 (unsigned long long)(v->t_running - fz), v->pre_rounds,
			 (unsigned long long)(v->t_dumped - fz),
			 (unsigned long long)(v->t_running - v->t_dumped - v->restore_ms), v->restore_ms);
		log_info("migrate: %u to node %u: %s", v->id, v->to, v->stats);
		if (!v->counted) {
			v->counted = true;
			krg_metrics_op(KRG_MOP_MIGRATION, true, v->bytes, now - v->t_start);
			krg_metrics_migration_frozen(v->t_running - fz);
		}
		mig_move_answer(v, 0, v->stats);
	}
	mig_move_maybe_free(v);
}

/* MF_NOTE: fds passed over a forwarded socket, by `who` (home or the
 * migrant), were refused (pump.c, refuse_passed). */
static void mig_note_passed(uint32_t id, const char *who, const struct mig_hdr *h)
{
	char n[24];
	snprintf(n, sizeof(n), "%lld", (long long)h->arg);
	log_warn("migrate: process %u: fd %d: %s passed %s fd%s over it (SCM_RIGHTS), which cannot cross nodes: "
		 "not delivered, the forwarded socket is shut at both ends", id, (int)h->fd, who, h->arg < 0 ? "many" : n,
		 h->arg == 1 ? "" : "s");
}

/* A deputy's frames: signals, its children's ends, window size, proxied data. */
static void from_deputy(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	struct dep *d = c->owner;
	if (!d)
		return;
	struct mig_siginfo q;
	if (h->type == MF_SIG && h->arg > 0 && h->arg < 65 && mig_siginfo_get(data, len, &q)) {
		Krg__Mig__Io io = KRG__MIG__IO__INIT;
		io.id = d->id;
		io.has_signal = true, io.signal = (int32_t)h->arg;
		io.has_sq_code = true, io.sq_code = q.code;
		io.has_sq_value = true, io.sq_value = q.value;
		io.has_sq_pid = true, io.sq_pid = q.pid;
		io.has_sq_uid = true, io.sq_uid = q.uid;
		mig_send_io(d->node, "mig.sig", &io, false);
	} else if (h->type == MF_SIG && h->arg > 0 && h->arg < 65) {
		mig_send_simple(d->node, "mig.sig", d->id, (int)h->arg, false, 0, UINT32_MAX);
	} else if (h->type == MF_KID_EXIT && h->fd > 0) {
		mig_dep_kid_ended(d, h->fd, (int)h->arg);
	} else if (h->type == MF_WINSZ) {
		/* On the bulk channel like the data, and before the SIGWINCH
		 * that follows it on the control channel? No ordering between
		 * channels: send it on control too. */
		Krg__Mig__Io io = KRG__MIG__IO__INIT;
		io.id = d->id;
		io.has_winsize = true;
		io.winsize = (uint32_t)h->arg;
		mig_send_io(d->node, "mig.sig", &io, false);
	}
	else if (h->type == MF_DATA || h->type == MF_EOF || h->type == MF_ACK)
		io_from_local(d->node, d->id, false, h, data, len);
	else if (h->type == MF_NOTE)
		mig_note_passed(d->id, "home", h);
	else if (h->type == MF_READY) {
		/* Handed over: its real fds, for the holder restoring into it. */
		struct hold *ho = mig_hold_by_id(d->id);
		if (ho && ho->inplace && ho->c)
			mig_conn_send(ho->c, MF_READY, 0, 0, data, len);
	}
}

/* Back home, the holder restoring the process into its deputy
 * (inplace.c) did not: the deputy goes on as one. */
static void inplace_resume(struct hold *ho)
{
	struct dep *d = ho->inplace ? mig_dep_by_id(ho->id) : NULL;
	ho->inplace = false;
	if (!d)
		return;
	bool was = d->handing;
	d->handing = false;
	if (d->c)
		mig_conn_send(d->c, MF_RESUME, 0, 0, NULL, 0);
	if (was)
		mig_dep_flush_pending(d);
}

/* A holder's frames: restored, failed, output, exit, ghosts, drained. */
static void from_holder(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	struct krg_migsvc *m = &the_mig;
	struct hold *ho = c->owner;
	if (!ho)
		return;
	if (h->type == MF_RESTORED) {
		ho->pid = (pid_t)h->arg;
		ho->restored = true;
		if (ho->notify_fd)
			mig_conn_send(c, MF_NOTIFY, 0, ho->notify_fd, NULL, 0);
		ho->notify_fd = 0; /* once: restored in place or, after all, beside */
		if (ho->has_req) {
			char t[64];
			snprintf(t, sizeof(t), "restore %d ms", (int)h->fd);
			ho->has_req = false;
			mig_answer(ho->o, 0, t, m->self, (uint32_t)ho->pid, ho->id);
		}
	} else if (h->type == MF_NOTE) {
		mig_note_passed(ho->id, "the migrant", h);
	} else if (h->type == MF_SOCKINO) {
		for (size_t i = 0; i < ho->np; i++)
			if (ho->num[i] == h->fd)
				ho->ino[i] = (unsigned long)h->arg;
	} else if (h->type == MF_BECOME && ho->inplace) {
		/* From now on its frames wait (ph) until it is restored or resumes. */
		struct dep *d = mig_dep_by_id(ho->id);
		if (d && d->c) {
			mig_conn_send(d->c, MF_BECOME, 0, 0, data, len);
			d->handing = true;
		}
	} else if (h->type == MF_RESUME) {
		inplace_resume(ho);
	} else if (h->type == MF_INPLACE) {
		/* Restored into its deputy: the original process again, ours no
		 * more (nothing between it and its parent, fds and children). */
		struct dep *d = mig_dep_by_id(ho->id);
		log_info("migrate: %u is home again as itself (pid %d)", ho->id, (int)h->arg);
		if (d) {
			d->exit_sent = true;
			mig_dep_free(d);
		}
		ho->exited = true;
		mig_hold_free(ho);
	} else if (h->type == MF_ERR) {
		char t[1024];
		snprintf(t, sizeof(t), "%.*s", (int)len, (const char *)data);
		inplace_resume(ho);
		if (ho->has_req) {
			ho->has_req = false;
			mig_answer(ho->o, -EIO, t, m->self, 0, ho->id);
		}
		mig_hold_free(ho);
	} else if (ho->orphan && (h->type == MF_DATA || h->type == MF_EOF || h->type == MF_ACK)) {
		mig_orphan_output(ho, h, data, len);
	} else if (h->type == MF_DATA || h->type == MF_EOF || h->type == MF_ACK) {
		io_from_local(ho->home, ho->id, true, h, data, len);
	} else if (ho->orphan && (h->type == MF_BACK || h->type == MF_KID_SIG)) {
		/* Input it left unread, or a signal for a child at home: home is gone. */
	} else if (h->type == MF_EXIT && ho->orphan) {
		ho->exited = true;
		mig_orphan_exit(ho, (int)h->arg);
		mig_hold_free(ho);
	} else if (h->type == MF_BACK) {
		mig_send_data(ho->home, ho->id, (uint32_t)h->fd, (ProtobufCBinaryData){ .data = (uint8_t *)data, .len = len },
			      true);
	} else if (h->type == MF_EXIT) {
		ho->exited = true;
		if (!ho->leaving)
			mig_send_simple(ho->home, "mig.exit", ho->id, 0, true, (int)h->arg, UINT32_MAX);
		log_info("migrate: migrant %u (pid %d) ended, status 0x%x", ho->id, (int)ho->pid, (int)h->arg);
		mig_hold_free(ho);
	} else if (h->type == MF_GHOST) {
		for (size_t i = 0; i < ho->nkids; i++)
			if (ho->kids[i].home == h->fd)
				ho->kids[i].ghost = (pid_t)h->arg;
	} else if (h->type == MF_KID_SIG && h->arg > 0 && h->arg < 65) {
		/* The migrant signalled a ghost: the real child gets it. */
		Krg__Mig__Io io = KRG__MIG__IO__INIT;
		io.id = ho->id;
		io.has_child = true;
		io.child = (uint32_t)h->fd;
		io.has_signal = true;
		io.signal = (int32_t)h->arg;
		mig_send_io(ho->home, "mig.sig", &io, false);
	} else if (h->type == MF_DRAINED && ho->mv) {
		struct move *v = ho->mv;
		/* From now on a signal home sends here goes back home
		 * (mig_dispatch_io), which sends it on once it knows where. */
		ho->drained = true;
		v->where_signals = (uint64_t)h->arg;
		if (mig_test_where_held(v->id)) {
			v->where_held = true;
			uv_timer_start(&v->early_timer, mig_where_tick, 20, 20);
			return;
		}
		mig_send_where(v);
	}
}

/* A worker's frames: pre-copy rounds and ranges, frozen, dumped, done, errors. */
static void from_worker(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	struct move *v = c->owner;
	if (!v)
		return;
	if (h->type == MF_ERR) {
		char t[3000];
		snprintf(t, sizeof(t), "%.*s", (int)len, (const char *)data);
		if (v->phase == MOVE_COMMITTED) {
			/* Exec of the deputy failed: the original is gone, so is the copy. */
			mig_send_simple(v->to, "mig.sig", v->id, SIGKILL, false, 0, UINT32_MAX);
			struct dep *d = mig_dep_by_id(v->id);
			if (d) {
				d->exit_sent = true;
				mig_dep_free(d);
			}
		}
		v->w = NULL;
		mig_conn_close(c);
		mig_move_fail(v, -EIO, t);
	} else if (h->type == MF_PRECOPY && h->fd > 0) {
		v->pre_rounds = (unsigned)h->fd;
		v->pre_want = (uint64_t)h->arg;
		v->pre_waiting = true;
		uv_update_time(the_mig.s->loop);
		log_debug("migrate: %u: pre-copy round %u copied, file %" PRIu64 " bytes, %" PRIu64 " sent, at %" PRIu64 " ms",
			  v->id, v->pre_rounds, v->pre_want, v->early_off, uv_now(the_mig.s->loop) - v->t_start);
		mig_early_pump(v);
		mig_pre_check(v);
	} else if (h->type == MF_COPY && len == sizeof(struct mig_copy) && v->phase == MOVE_COPYING) {
		worker_copy(v, data);
	} else if (h->type == MF_PRECOPY) {
		v->early_bad = v->early_bad || v->direct; /* a pre-copy given up: its file too */
		log_info("migrate: %u: no pre-copy (%.*s): stop and copy", v->id, (int)len, (const char *)data);
	} else if (h->type == MF_FROZEN) {
		uv_update_time(the_mig.s->loop);
		v->t_frozen = uv_now(the_mig.s->loop);
	} else if (h->type == MF_SOCKADDR && len <= MIG_SA_MAX && (h->arg & 7) < MIG_SA_N && h->arg >= 0 &&
		   (h->arg >> 3) < 4096) {
		size_t i = 0;
		while (i < v->nsa && v->sa_num[i] != h->fd)
			i++;
		if (i == MIG_MAX_PROXIES)
			return;
		if (i == v->nsa) {
			v->sa_num[v->nsa++] = h->fd;
			memset(&v->sa[i], 0, sizeof(v->sa[i]));
		}
		int w = (int)(h->arg & 7), e = (int)(h->arg >> 3);
		v->sa[i].len[w] = (int16_t)(e ? -e : (int)len);
		v->sa[i].known |= (uint8_t)(1u << w);
		memcpy(v->sa[i].a[w], data, len);
	} else if (h->type == MF_DUMPED) {
		v->carried = (uint64_t)h->arg;
		char spec[2048];
		snprintf(spec, sizeof(spec), "%.*s", (int)len, (const char *)data);
		mig_move_dumped(v, spec);
	} else if (h->type == MF_DONE) {
		worker_done(v, c);
	}
}

void mig_on_frame(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len)
{
	switch (c->kind) {
	case CK_PENDING:
		mig_hello(c, h, data, len);
		return;
	case CK_DEPUTY:
		from_deputy(c, h, data, len);
		return;
	case CK_HOLDER:
		from_holder(c, h, data, len);
		return;
	case CK_WORKER:
		from_worker(c, h, data, len);
		return;
	}
}

void mig_on_conn_gone(struct conn *c)
{
	if (c->dead)
		return;
	if (c->kind == CK_DEPUTY && c->owner) {
		struct dep *d = c->owner;
		d->c = NULL;
	} else if (c->kind == CK_HOLDER && c->owner) {
		struct hold *h = c->owner;
		h->c = NULL;
		inplace_resume(h);
		if (h->has_req) {
			h->has_req = false;
			mig_answer(h->o, -EIO, "the restore worker died", the_mig.self, 0, h->id);
		}
		if (h->restored && !h->exited && !h->leaving && h->orphan)
			mig_orphan_exit(h, SIGKILL);
		else if (h->restored && !h->exited && !h->leaving)
			mig_send_simple(h->home, "mig.exit", h->id, 0, true, SIGKILL, UINT32_MAX);
		if (h->mv && h->mv->phase == MOVE_COMMITTED && !h->mv->verdict_sent && !h->mv->where_held)
			mig_send_where(h->mv);
		mig_hold_free(h);
	} else if (c->kind == CK_WORKER && c->owner) {
		struct move *v = c->owner;
		v->w = NULL;
		if (v->phase != MOVE_COMMITTED)
			kill(v->pid, SIGCONT); /* never leave it frozen */
		mig_move_fail(v, -EIO, "the migration worker died");
	}
	bool worker = c->kind == CK_WORKER;
	c->owner = NULL;
	if (worker)
		mig_start_queued();
}
