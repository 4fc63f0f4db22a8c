/* mig_move.c — a part of krgd's migration service (migsvc-int.h). */
#include "proc/migrate/migsvc-int.h"

static const char *const phase_names[] = { "copying", "sending", "restoring", "committed" };

const char *mig_move_phase_name(enum move_phase p)
{
	return (unsigned)p < ARRAY_SIZE(phase_names) ? phase_names[p] : "?";
}

void mig_move_set_phase(struct move *v, enum move_phase to)
{
	if (to <= v->phase) {
		/* A bug, not a peer's doing: say so and keep the later phase. */
		log_warn("migrate: %u: phase %s after %s ignored", v->id, mig_move_phase_name(to),
			 mig_move_phase_name(v->phase));
		return;
	}
	log_debug("migrate: %u: %s -> %s", v->id, mig_move_phase_name(v->phase), mig_move_phase_name(to));
	v->phase = to;
}

/* ---- moves (source) ---- */

void mig_move_answer(struct move *v, int status, const char *text)
{
	if (v->answered)
		return;
	v->answered = true;
	mig_answer(v->o, status, text, status ? the_mig.self : v->to, v->new_pid, v->id);
	if (v->done) {
		uint64_t now = uv_now(the_mig.s->loop);
		v->done(status, now - v->t_start, status || !v->t_running ? 0 : v->t_running - v->t_start, v->done_data);
		v->done = NULL;
	}
}

static void notify_self(pid_t pid, uint32_t fd, int status)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return;
	int nfd = (int)syscall(SYS_pidfd_getfd, pfd, (int)fd, 0);
	if (nfd >= 0) {
		char b[32];
		int n = snprintf(b, sizeof(b), "%d\n", status);
		ssize_t w = write(nfd, b, (size_t)n);
		(void)w;
		close(nfd);
	}
	close(pfd);
}

static void move_closed(uv_handle_t *h)
{
	free(h->data);
}


void mig_move_free(struct move *v)
{
	for (struct move **p = &the_mig.moves; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
	if (v->w) {
		v->w->owner = NULL;
		mig_conn_close(v->w);
	}
	if (v->h)
		v->h->mv = NULL;
	krg_xfer_src_free(&v->src);
	if (v->early_fd >= 0)
		close(v->early_fd);
	free(v->cq);
	if (v->pidfd >= 0)
		close(v->pidfd);
	mig_rm_rf(v->dir);
	uv_timer_stop(&v->early_timer);
	uv_close((uv_handle_t *)&v->early_timer, move_closed);
	mig_start_queued();
}

unsigned mig_workers_running(void)
{
	unsigned n = 0;
	for (struct move *v = the_mig.moves; v; v = v->next)
		n += v->w != NULL;
	return n;
}


/* Start queued moves while worker slots are free. Each is checked again
 * from scratch (the process may have ended, the node gone). */
void mig_start_queued(void)
{
	struct krg_migsvc *m = &the_mig;
	while (m->running && m->queue && mig_workers_running() < m->s->cfg->migrate_max_workers) {
		struct queued_move *q = m->queue;
		m->queue = q->next;
		if (!m->queue)
			m->queue_tail = &m->queue;
		m->nqueued--;
		log_info("migrate: %u leaves the queue after %llu ms", q->id,
			 (unsigned long long)(uv_now(m->s->loop) - q->since));
		char e[600] = "";
		int r = mig_move_local(q->o, q->id, q->to, q->uid, q->notify_fd | 0x80000000u, q->evicting, e,
					   sizeof(e));
		if (r < 0) {
			log_warn("migrate: %u to node %u: %s", q->id, q->to, e[0] ? e : strerror(-r));
			if (q->notify_fd && !q->o.call && !q->o.req_id)
				notify_self(mig_hold_by_id(q->id) ? mig_hold_by_id(q->id)->pid : (pid_t)krg_procid_pid(q->id),
					    q->notify_fd & 0xffff, r);
			else
				mig_answer(q->o, r, e[0] ? e : strerror(-r), m->self, 0, q->id);
		}
		free(q);
	}
}

void mig_move_maybe_free(struct move *v)
{
	/* freed: callers may look at it again before its memory goes (at the
	 * timer's close callback). */
	if (!v->freed && v->answered && !v->src.pieces && v->req_done && !v->w) {
		v->freed = true;
		mig_move_free(v);
	}
}

static void send_abort(struct move *v)
{
	Krg__Mig__File f = KRG__MIG__FILE__INIT;
	f.xfer = v->xfer;
	f.name = (char *)"-";
	f.has_abort = f.abort = true;
	uint8_t *buf = malloc(64);
	if (!buf)
		return;
	size_t len = krg__mig__file__pack(&f, buf);
	if (krg_net_send_bulk(the_mig.s->net, v->to, "mig.file", buf, len, mig_bulk_done, buf) < 0)
		free(buf);
}

void mig_move_fail(struct move *v, int status, const char *text)
{
	log_warn("migrate: %u to node %u: %s", v->id, v->to, text);
	if (!v->counted) {
		v->counted = true;
		krg_metrics_op(KRG_MOP_MIGRATION, false, v->bytes, uv_now(the_mig.s->loop) - v->t_start);
	}
	if (v->phase == MOVE_COPYING)
		v->req_done = true; /* no mig.recv was sent: none to wait for (the move can go) */
	uv_timer_stop(&v->early_timer);
	if (v->phase == MOVE_COPYING && v->early_pieces && !v->tx_failed)
		send_abort(v); /* the target has pieces but no mig.recv will come */
	if (v->notify_fd && v->phase != MOVE_COMMITTED)
		notify_self(v->pid, v->notify_fd, status);
	mig_move_answer(v, status, text);
	v->tx_failed = true;
	if (v->w && v->phase != MOVE_COMMITTED && !v->verdict_sent) {
		v->verdict_sent = true;
		mig_conn_send(v->w, MF_ABORT, 0, 0, NULL, 0);
	}
	mig_move_maybe_free(v);
}

static void tx_pump(struct move *v);

static void tx_done(int status, void *data)
{
	struct cq *p = data; /* reused as a piece holder: len + buf */
	struct move *v = *(struct move **)p->buf;
	krg_xfer_src_piece_done(&v->src, p->len);
	free(p);
	if (status < 0 && !v->tx_failed) {
		char e[128];
		snprintf(e, sizeof(e), "sending the image to node %u: %s", v->to, strerror(-status));
		mig_move_fail(v, status, e);
	}
	tx_pump(v);
	mig_move_maybe_free(v);
}

static int send_piece(struct move *v, const char *name, uint64_t off, int fd, size_t want, bool last, bool end);

static int tx_one(struct move *v)
{
	char e[1200];
	struct krg_xfer_src *sc = &v->src;
	if (krg_xfer_src_file(sc, e, sizeof(e)) < 0) {
		mig_move_fail(v, -EIO, e);
		return -1;
	}
	bool skip = v->skip_name && !strcmp(v->skip_name, sc->names[sc->cur]);
	if (skip && sc->off == 64)
		sc->off = v->early_off; /* sent while it was dumped */
	uint64_t lim = skip && sc->off < 64 ? 64 : sc->size;
	size_t want = lim - sc->off > XFER_CHUNK ? XFER_CHUNK : (size_t)(lim - sc->off);
	bool last = sc->off + want == sc->size && !(skip && sc->off < 64 && v->early_off < sc->size);
	int r = send_piece(v, sc->names[sc->cur], sc->off, sc->fd, want, last, last && sc->cur + 1 == sc->n);
	if (r == -EIO) {
		mig_move_fail(v, -EIO, "cannot read the image");
		return -1;
	}
	if (r < 0) {
		snprintf(e, sizeof(e), "sending the image to node %u: %s", v->to, strerror(-r));
		mig_move_fail(v, r, e);
		return -1;
	}
	v->bytes += want;
	if (krg_xfer_src_sent(sc, want, last))
		mig_move_set_phase(v, MOVE_RESTORING);
	return 0;
}

static void tx_pump(struct move *v)
{
	if (v->phase == MOVE_COPYING) {
		mig_early_pump(v);
		mig_pre_check(v);
		return;
	}
	while (!v->tx_failed && v->phase < MOVE_RESTORING && v->src.inflight < XFER_INFLIGHT)
		if (tx_one(v) < 0)
			return;
}

/* A piece of a file on its way: `want` bytes at offset `off` of `name`,
 * encoded in place (filemsg.h); *data is where its bytes go. */
static struct cq *piece_new(struct move *v, const char *name, uint64_t off, size_t want, bool last, bool end, uint8_t **data)
{
	struct cq *p = malloc(sizeof(*p) + sizeof(v) + MIG_FILE_HEAD_MAX(strlen(name)) + want);
	if (!p)
		return NULL;
	memcpy(p->buf, &v, sizeof(v));
	size_t n = mig_file_head(p->buf + sizeof(v), v->xfer, name, off, want, last, end);
	p->len = n + want;
	*data = p->buf + sizeof(v) + n;
	return p;
}

static int piece_send(struct move *v, struct cq *p)
{
	int r = krg_xfer_src_send(&v->src, the_mig.s->net, v->to, "mig.file", p->buf + sizeof(v), p->len, tx_done, p);
	if (r < 0)
		free(p);
	return r;
}

/* One piece of a file read from fd straight into the message. -errno;
 * -EIO: the read failed. */
static int send_piece(struct move *v, const char *name, uint64_t off, int fd, size_t want, bool last, bool end)
{
	uint8_t *m;
	struct cq *p = piece_new(v, name, off, want, last, end, &m);
	if (!p)
		return -ENOMEM;
	if (krg_xfer_read(fd, off, m, want) < 0) {
		free(p);
		return -EIO;
	}
	return piece_send(v, p);
}

/* Pre-copy by krgd (MF_COPY): the next XFER_CHUNK of the range at the
 * head of the queue read from the process straight into a piece, its
 * page sums sent back to the worker (MF_COPIED) for the final dump. A
 * page that cannot be read (unmapped meanwhile) is sent as zeros and
 * reported not ok: the final dump reads it then, if it still exists. */
static int copy_one(struct move *v)
{
	struct mig_copy *c = &v->cq[v->cq_head];
	size_t want = c->len > XFER_CHUNK ? XFER_CHUNK : (size_t)c->len;
	size_t np = want / 4096;
	uint8_t *m;
	struct cq *p = piece_new(v, v->early_name, 64 + c->off, want, false, false, &m);
	uint8_t *rep = malloc(8 + np * 9);
	if (!p || !rep) {
		free(p);
		free(rep);
		return -ENOMEM;
	}
	uint8_t *ok = rep + 8 + np * 8;
	memset(ok, 1, np);
	struct iovec li = { m, want }, ri = { (void *)(uintptr_t)c->addr, want };
	ssize_t got = process_vm_readv(v->pid, &li, 1, &ri, 1, 0);
	if (got != (ssize_t)want) {
		/* Page by page from the first that failed. */
		size_t from = got > 0 ? (size_t)got / 4096 : 0;
		for (size_t k = from; k < np; k++) {
			struct iovec l1 = { m + k * 4096, 4096 }, r1 = { (void *)(uintptr_t)(c->addr + k * 4096), 4096 };
			if (process_vm_readv(v->pid, &l1, 1, &r1, 1, 0) != 4096) {
				memset(m + k * 4096, 0, 4096);
				ok[k] = 0;
			}
		}
	}
	/* Still alive after the read, so its pid was not someone else's
	 * during it: what we read is its memory. */
	if (syscall(SYS_pidfd_send_signal, v->pidfd, 0, NULL, 0) < 0) {
		free(p);
		free(rep);
		return -ESRCH;
	}
	memcpy(rep, &c->off, 8);
	for (size_t k = 0; k < np; k++) {
		uint64_t sum = XXH3_64bits(m + k * 4096, 4096);
		memcpy(rep + 8 + k * 8, &sum, 8);
	}
	mig_conn_send(v->w, MF_COPIED, 0, (int64_t)c->addr, rep, 8 + np * 9);
	free(rep);
	int r = piece_send(v, p);
	if (r < 0)
		return r;
	c->addr += want;
	c->off += want;
	c->len -= want;
	if (64 + c->off > v->early_off)
		v->early_off = 64 + c->off;
	v->bytes += want;
	v->early_pieces++;
	if (!c->len)
		v->cq_head++;
	return 0;
}

static void copy_pump(struct move *v)
{
	struct stat st;
	if (v->early_fd >= 0 && (fstat(v->early_fd, &st) < 0 || st.st_nlink == 0)) {
		v->early_bad = true;  /* that pre-copy was abandoned: the dump sends it all */
		v->cq_head = v->cq_n;
		return;
	}
	while (v->cq_head < v->cq_n && v->src.inflight < XFER_INFLIGHT && !v->tx_failed)
		if (copy_one(v) < 0) {
			v->early_bad = true;
			v->cq_head = v->cq_n;
			return;
		}
}

/* A piece of the pages file read into its message is not needed here
 * again (the final dump refers to pre-copied pages by offset, never reads
 * them), so its whole pages are freed at once: the worker's next writes
 * reuse them, and the source holds a few MiB of copies instead of the
 * process's whole memory. Memory handed out fresh is what makes a large
 * transfer slow here, far more than the copying itself (on a VM each new
 * page of a guest may cost the host a fault). */
static void punch_sent(int fd, uint64_t off, uint64_t len)
{
	uint64_t s = (off + 4095) & ~4095ULL, e = (off + len) & ~4095ULL;
	if (e > s)
		(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)s, (off_t)(e - s));
}

/* While the worker dumps: whole pieces of the pages file written so far. */
void mig_early_pump(struct move *v)
{
	if (v->phase >= MOVE_SENDING || v->tx_failed || v->early_bad)
		return;
	if (v->direct) {
		copy_pump(v);
		return;
	}
	if (v->early_fd < 0) {
		DIR *d = opendir(v->dir);
		if (!d)
			return;
		struct dirent *e;
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);
			if (!strncmp(e->d_name, ".pages-", 7) && l > 12 && l < sizeof(v->early_name) &&
			    !strcmp(e->d_name + l - 8, ".img.tmp")) {
				v->early_fd = openat(dirfd(d), e->d_name, O_RDWR | O_CLOEXEC); /* RDWR: punch_sent */
				snprintf(v->early_name, sizeof(v->early_name), "%.*s", (int)(l - 5), e->d_name + 1);
				break;
			}
		}
		closedir(d);
		struct stat st;
		if (v->early_fd < 0 || fstat(v->early_fd, &st) < 0)
			return;
		v->early_ino = st.st_ino;
		v->early_off = 64;
	}
	struct stat st;
	if (fstat(v->early_fd, &st) < 0 || st.st_nlink == 0) {
		v->early_bad = true; /* that dump was abandoned: the final pass sends it all */
		return;
	}
	while (v->src.inflight < XFER_INFLIGHT && (uint64_t)st.st_size >= v->early_off + XFER_CHUNK) {
		int r = send_piece(v, v->early_name, v->early_off, v->early_fd, XFER_CHUNK, false, false);
		if (r < 0) {
			v->early_bad = true;
			return;
		}
		v->early_pieces++;
		punch_sent(v->early_fd, v->early_off, XFER_CHUNK);
		v->early_off += XFER_CHUNK;
		v->bytes += XFER_CHUNK;
	}
}

/* Pre-copy: answer the worker once the pages file went out as far as
 * whole pieces go (the rest goes after the dump), or at once if it cannot
 * be streamed (it will be sent whole then). */
void mig_pre_check(struct move *v)
{
	if (!v->pre_waiting || v->tx_failed || !v->w)
		return;
	if (!v->early_bad && v->direct && (v->cq_head < v->cq_n || v->src.inflight))
		return;
	if (!v->early_bad && !v->direct && v->early_fd >= 0 && (v->early_off + XFER_CHUNK <= v->pre_want || v->src.inflight))
		return;
	if (!v->early_bad && v->early_fd < 0)
		return;  /* not found yet: the timer looks again */
	/* Written to the link; now received? (A target that does not say
	 * gets MIG_GOT_WAIT_MS.) */
	uint64_t now = uv_now(the_mig.s->loop);
	if (!v->t_sent)
		v->t_sent = now;
	if (!v->early_bad && v->got < v->bytes && now - v->t_sent < MIG_GOT_WAIT_MS)
		return;
	v->t_sent = 0;
	v->pre_waiting = false;
	log_debug("migrate: %u: pre-copy round %u sent at %" PRIu64 " ms", v->id, v->pre_rounds, now - v->t_start);
	mig_conn_send(v->w, MF_SENT, 0, (int64_t)v->early_off, NULL, 0);
}

void mig_early_tick(uv_timer_t *t)
{
	struct move *v = t->data;
	mig_early_pump(v);
	mig_pre_check(v);
	if (v->phase >= MOVE_SENDING || v->tx_failed || v->early_bad)
		uv_timer_stop(t);
}

static void recv_reply(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct move *v = data;
	v->req_done = true;
	char e[600];
	if (status) {
		snprintf(e, sizeof(e), "node %u: %s", v->to, krg_request_why(status));
		if (!v->tx_failed)
			mig_move_fail(v, status, e);
		mig_move_maybe_free(v);
		return;
	}
	Krg__Mig__Result *res = krg__mig__result__unpack(NULL, reply->len, reply->body);
	if (!res || res->status > 0 || res->status < -4095) {
		mig_move_fail(v, -EBADMSG, "malformed answer from the target node");
	} else if (res->status) {
		mig_move_fail(v, res->status, res->text);
	} else if (v->tx_failed) {
		/* We gave up meanwhile (the process died?): the copy must go. */
		mig_send_simple(v->to, "mig.sig", v->id, SIGKILL, false, 0, UINT32_MAX);
	} else if (v->here && !v->h) {
		/* Its holder went away meanwhile (the migrant ended or was
		 * killed here): the copy must go too. */
		mig_send_simple(v->to, "mig.sig", v->id, SIGKILL, false, 0, UINT32_MAX);
		mig_move_fail(v, -ESRCH, "the process ended during its migration");
	} else {
		v->new_pid = res->has_pid ? res->pid : 0;
		if (!res->text || sscanf(res->text, "restore %u ms", &v->restore_ms) != 1)
			v->restore_ms = 0;
		mig_move_set_phase(v, MOVE_COMMITTED);
		v->t_running = uv_now(the_mig.s->loop);
		log_info("migrate: %u runs on node %u as pid %u", v->id, v->to, v->new_pid);
		if (v->h) {
			/* A migrant here: its holder sends what it wrote, then we
			 * tell home where it went (mig.where after that data). */
			v->h->leaving = true;
			v->h->moved_on = true;
			mig_conn_send(v->h->c, MF_LEAVE, 0, (int64_t)v->carried, NULL, 0);
		} else {
			/* The original at home: becomes the deputy. */
			struct dep *d = calloc(1, sizeof(*d));
			if (d) {
				d->id = v->id;
				d->pid = v->pid;
				d->node = v->to;
				/* Watched from now: a deputy that dies before it
				 * connects takes its migrant along too. */
				d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
				if (d->pidfd >= 0 && uv_poll_init(the_mig.s->loop, &d->pp, d->pidfd) == 0) {
					d->pp.data = d;
					d->pp_on = true;
					uv_poll_start(&d->pp, UV_READABLE, mig_dep_died);
				}
				getrandom(d->token, sizeof(d->token), 0);
				d->next = the_mig.deps;
				the_mig.deps = d;
				char tok[33], ids[16], argv[2048];
				for (int i = 0; i < 16; i++)
					snprintf(tok + 2 * i, 3, "%02x", d->token[i]);
				snprintf(ids, sizeof(ids), "%u", v->id);
				char comm[64] = "krg-deputy", path[64];
				snprintf(path, sizeof(path), "/proc/%d/comm", (int)v->pid);
				FILE *f = fopen(path, "re");
				if (f) {
					if (fgets(comm, sizeof(comm), f))
						comm[strcspn(comm, "\n")] = 0;
					fclose(f);
				}
				size_t n = 0;
				const char *parts[] = { the_mig.deputy, the_mig.sock_path, ids, tok, comm };
				for (size_t i = 0; i < 5; i++) {
					size_t l = strlen(parts[i]) + 1;
					if (n + l <= sizeof(argv)) {
						memcpy(argv + n, parts[i], l);
						n += l;
					}
				}
				v->verdict_sent = true;
				mig_conn_send(v->w, MF_COMMIT, 0, 1, argv, n);
			} else {
				v->verdict_sent = true;
				mig_conn_send(v->w, MF_COMMIT, 0, 1, NULL, 0);
			}
		}
	}
	if (res)
		krg__mig__result__free_unpacked(res, NULL);
	mig_move_maybe_free(v);
}

/* The children of process pid (every thread's), at most max. */
static size_t children_of(pid_t pid, pid_t *out, size_t max)
{
	char path[64];
	size_t n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] == '.')
			continue;
		char cp[96];
		snprintf(cp, sizeof(cp), "/proc/%d/task/%s/children", (int)pid, e->d_name);
		FILE *f = fopen(cp, "re");
		if (!f)
			continue;
		int c;
		while (n < max && fscanf(f, "%d", &c) == 1)
			out[n++] = c;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* The signal that stopped process pid, if its parent has not reaped that
 * stop yet (waitpid WUNTRACED would report it); else 0. /proc/PID/stat's
 * exit_code (field 52) holds it until the wait takes it. */
static int unreaped_stop(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = krg_read_small(path, buf, sizeof(buf));
	const char *p = n > 0 ? strrchr(buf, ')') : NULL;
	if (!p || (p[2] != 'T'))
		return 0;
	const char *last = strrchr(buf, ' ');
	int code = last ? atoi(last + 1) : 0;
	return code >= 1 && code <= 64 ? code : 0;
}

/* Process pid's parent (/proc/PID/stat field 4), 0 if unknown. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = krg_read_small(path, buf, sizeof(buf));
	const char *p = n > 0 ? strrchr(buf, ')') : NULL;
	int ppid = 0;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

/* The children v's process leaves at home, for ghosts on the target: at
 * home every child of the original (still there or not waited for); a
 * migrant here takes its ghosts along (not the ones it reaped, nor
 * children it made here, which a one-process migration leaves behind). */
static size_t list_kids(const struct move *v, struct kid *out)
{
	pid_t c[MIG_MAX_KIDS];
	size_t n = children_of(v->pid, c, MIG_MAX_KIDS), k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!v->here) {
			out[k] = (struct kid){ .home = c[i], .as = c[i] };
			char path[64], line[256];
			snprintf(path, sizeof(path), "/proc/%d/comm", (int)c[i]);
			FILE *f = fopen(path, "re");
			if (f) {
				if (fgets(out[k].comm, sizeof(out[k].comm), f))
					out[k].comm[strcspn(out[k].comm, "\n")] = 0;
				fclose(f);
			}
			snprintf(path, sizeof(path), "/proc/%d/status", (int)c[i]);
			f = fopen(path, "re");
			unsigned u[3], g;
			bool hu = false, hg = false;
			while (f && fgets(line, sizeof(line), f)) {
				hu |= sscanf(line, "Uid: %u %u %u", &u[0], &u[1], &u[2]) == 3;
				hg |= sscanf(line, "Gid: %u", &g) == 1;
			}
			if (f)
				fclose(f);
			if (hu && hg)
				out[k].has_ids = true, out[k].uid = u[0], out[k].suid = u[2], out[k].gid = g;
			out[k].stop_sig = unreaped_stop(c[i]);
			k++;
			continue;
		}
		for (size_t j = 0; v->h && j < v->h->nkids; j++)
			if (v->h->kids[j].ghost == c[i]) {
				out[k] = v->h->kids[j];
				out[k].stop_sig = unreaped_stop(c[i]);  /* its ghost's, here */
				out[k++].as = c[i];
			}
	}
	return k;
}

/* The worker dumped it: list the image, ask the target, stream. */
void mig_move_dumped(struct move *v, const char *spec)
{
	snprintf(v->spec, sizeof(v->spec), "%s", spec);
	if (krg_xfer_src_open(&v->src, v->dir, NULL, SIZE_MAX) < 0 && !v->src.n) {
		mig_move_fail(v, -EIO, "the dump left no image");
		return;
	}
	uv_timer_stop(&v->early_timer);
	if (v->direct && v->cq_head < v->cq_n) {
		/* Frozen before all was copied (the worker stopped waiting): the
		 * dump took none of those pages from us (no report reached it),
		 * so their ranges stay holes, sent by neither pass. */
		const struct mig_copy *last = &v->cq[v->cq_n - 1];
		if (64 + last->off + last->len > v->early_off)
			v->early_off = 64 + last->off + last->len;
		v->cq_head = v->cq_n;
	}
	if (v->early_fd >= 0 && !v->early_bad && v->early_off > 64) {
		char path[600];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", v->dir, v->early_name);
		for (size_t i = 0; i < v->src.n; i++)
			if (!strcmp(v->src.names[i], v->early_name) && stat(path, &st) == 0 && st.st_ino == v->early_ino &&
			    (uint64_t)st.st_size >= v->early_off)
				v->skip_name = v->src.names[i];
	}
	Krg__Mig__Recv q = KRG__MIG__RECV__INIT;
	q.xfer = v->xfer;
	q.id = v->id;
	q.uid = v->uid;
	q.gid = v->gid;
	if (v->notify_fd)
		q.has_notify_fd = true, q.notify_fd = v->notify_fd;
	/* It keeps seeing the files it saw here (docs/fsview.md). */
	if ((q.view_home = krg_fsview_home_of(the_mig.s->fsview, v->pid)))
		q.has_view_home = true;
	/* Its getppid() at home: its holder there takes that pid. */
	pid_t ppid = v->h ? v->h->ppid : parent_of(v->pid);
	if (ppid > 1)
		q.has_ppid = true, q.ppid = (uint32_t)ppid;
	Krg__Mig__Proxy px[MIG_MAX_PROXIES], *pp[MIG_MAX_PROXIES];
	size_t np = 0;
	/* Its children (it is frozen: the list holds): at home, all of them
	 * stay; here, those that are ghosts go on as ghosts. */
	static struct kid kids[MIG_MAX_KIDS];
	static Krg__Mig__Kid kx[MIG_MAX_KIDS], *kp[MIG_MAX_KIDS];
	size_t nk = list_kids(v, kids);
	for (size_t i = 0; i < nk; i++) {
		krg__mig__kid__init(&kx[i]);
		kx[i].pid = (uint32_t)kids[i].home;
		kx[i].as = (uint32_t)kids[i].as;
		kx[i].comm = kids[i].comm;
		if (kids[i].has_ids) {
			kx[i].has_uid = kx[i].has_suid = kx[i].has_gid = true;
			kx[i].uid = kids[i].uid, kx[i].suid = kids[i].suid, kx[i].gid = kids[i].gid;
		}
		if (kids[i].stop_sig) {
			kx[i].has_stop_signal = true;
			kx[i].stop_signal = (uint32_t)kids[i].stop_sig;
		}
		kp[i] = &kx[i];
	}
	q.n_kids = nk;
	q.kids = kp;
	/* A migrant here: its FIFOs stand for the deputy's fds already. */
	static uint32_t groups[MIG_MAX_PROXIES][MIG_SA_MAX / sizeof(uint32_t)];
	size_t nh = v->h ? v->h->np : 0;
	for (size_t i = 0; i < nh; i++) {
		krg__mig__proxy__init(&px[np]);
		px[np].fd = (uint32_t)v->h->num[i];
		px[np].reads = v->h->reads[i];
		px[np].has_tty = px[np].tty = v->h->tty[i];
		if (v->h->stype[i]) {
			px[np].has_sock_type = true, px[np].sock_type = (uint32_t)v->h->stype[i];
			mig_sa_to_proxy(&px[np], &v->h->sa[i], groups[np]);
		}
		pp[np] = &px[np];
		np++;
	}
	for (const char *s = spec; *s && np < MIG_MAX_PROXIES;) {
		int num, keep, k = 0;
		unsigned rows = 0, cols = 0;
		char dir, kind[8];
		if (sscanf(s, "%d:%d:%c:%7[a-z0-9-]:%ux%u%n", &num, &keep, &dir, kind, &rows, &cols, &k) != 6)
			break;
		/* A terminal of a migrant here shows up again (a pty is refused
		 * by the dump): it replaces the entry its holder had. */
		size_t at = np;
		for (size_t i = 0; i < np; i++)
			if (px[i].fd == (uint32_t)num)
				at = i;
		/* A forwarded socket of a migrant here is refused by the dump as
		 * well: it stays the socket it stands for. */
		uint32_t st = at < np && px[at].has_sock_type ? px[at].sock_type : 0;
		if (kind[0] == 's')
			st = (uint32_t)atoi(kind + 1);
		/* Its addresses: home's, which a migrant here has from its
		 * previous node (the worker saw its socketpair end). */
		Krg__Mig__Proxy was = at < np ? px[at] : (Krg__Mig__Proxy)KRG__MIG__PROXY__INIT;
		krg__mig__proxy__init(&px[at]);
		px[at].fd = (uint32_t)num;
		if (st)
			px[at].has_sock_type = true, px[at].sock_type = st;
		if (at < nh && was.has_sock_type) {
			mig_sa_to_proxy(&px[at], &v->h->sa[at], groups[at]);
		} else if (st) {
			for (size_t j = 0; j < v->nsa; j++)
				if (v->sa_num[j] == num)
					mig_sa_to_proxy(&px[at], &v->sa[j], groups[at]);
		}
		px[at].reads = dir == 'r';
		px[at].has_tty = px[at].tty = !strcmp(kind, "tty");
		if (rows && cols)
			px[at].has_rows = px[at].has_cols = true, px[at].rows = rows, px[at].cols = cols;
		pp[at] = &px[at];
		if (at == np)
			np++;
		s += k;
		while (*s == ' ')
			s++;
	}
	q.n_proxies = np;
	q.proxies = pp;
	size_t len = krg__mig__recv__get_packed_size(&q);
	uint8_t *buf = malloc(len);
	if (!buf) {
		mig_move_fail(v, -ENOMEM, "out of memory");
		return;
	}
	krg__mig__recv__pack(&q, buf);
	int r = krg_net_request(the_mig.s->net, v->to, "mig.recv", buf, len, MOVE_TIMEOUT_MS, recv_reply, v);
	free(buf);
	if (r < 0) {
		char e[128];
		snprintf(e, sizeof(e), "node %u is unreachable", v->to);
		v->req_done = true;
		mig_move_fail(v, r, e);
		return;
	}
	mig_move_set_phase(v, MOVE_SENDING);
	v->t_dumped = uv_now(the_mig.s->loop);
	tx_pump(v);
}

/* Fault injection for the tests (migrate.sh 3e): while
 * <mig-hold dir>/<id>.where exists, the node a migrant leaves does not
 * tell home where it went: home's signals meanwhile reach the old node. */
bool mig_test_where_held(uint32_t id)
{
	char buf[256];
	const char *dir = krg_fault_value("mig-hold", buf, sizeof(buf));
	char path[512];
	if (!dir || !dir[0])
		return false;
	snprintf(path, sizeof(path), "%s/%u.where", dir, id);
	return access(path, F_OK) == 0;
}

/* The copy here left (its output drained): tell home the new node and
 * the signals that reached the frozen copy after its dump (home sends
 * them on), then let the worker commit. */
void mig_send_where(struct move *v)
{
	Krg__Mig__Io io = KRG__MIG__IO__INIT;
	io.id = v->id;
	io.has_node = true;
	io.node = v->to;
	io.has_signals = true;
	io.signals = v->where_signals;
	mig_send_io(krg_procid_home(v->id), "mig.where", &io, true);
	if (!v->verdict_sent && v->w) {
		v->verdict_sent = true;
		mig_conn_send(v->w, MF_COMMIT, 0, 0, NULL, 0);
	}
}

void mig_where_tick(uv_timer_t *t)
{
	struct move *v = t->data;
	if (mig_test_where_held(v->id))
		return;
	uv_timer_stop(t);
	mig_send_where(v);
}
