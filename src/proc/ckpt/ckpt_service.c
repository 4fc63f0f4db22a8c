/* ckpt_service.c — checkpoint and restart through krgd (ckptsvc.h).
 *
 *   ckpt.dump     API {id, kill, ignore_unsupported, description}: the
 *                 caller's krgd sends net "ckpt.dump" with the caller's uid
 *                 (SO_PEERCRED) to the id's home node (or handles it when
 *                 that is itself). There: the pid must be a krg process (a
 *                 descendant of krgd) and the caller root or its real or
 *                 saved uid (the proc.kill rule); a worker dumps it into
 *                 the node's store and the answer is the version path.
 *   ckpt.restart  API {appid, version, node}: sent to the node holding the
 *                 image (the app id's home node); a worker checks the
 *                 caller owns the app's images (or is root), restores the
 *                 process as its child and exits, so the process is
 *                 re-parented to krgd (a child subreaper): a krg process
 *                 like those of krg run. The answer is its new id; nobody
 *                 waits for it (its status goes to the exec service's
 *                 reaper like any orphan's).
 *                 With node other than the holder: the holder (same
 *                 check) streams the version directory to the node
 *                 (net request "ckpt.recv" + bulk "ckpt.file" pieces,
 *                 ≤ 1 MiB read per piece, ≤ 4 MiB in flight); the node
 *                 writes STORE/<appid>/v<n> and restores there with its
 *                 worker; its Result is passed back to the caller.
 *
 * Workers. A dump or restore is seconds of CPU and blocking I/O, so each
 * runs in a forked child of krgd. The exec service owns SIGCHLD and reaps
 * every child with waitpid(-1) (unknown ones as orphans), so a worker's
 * exit status is never ours to collect: the worker writes its result
 * ("STATUS\nTEXT") into a pipe we read with libuv, and the end of that
 * pipe without a result means the worker died. No pidfd, no race with
 * the reaper.
 *
 * Net "ckpt.dump"/"ckpt.restart" are answered with request status 0 and a
 * Result (status and text: path or error line), so the error line travels
 * back to the caller; a non-zero request status is a transport failure.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "api/server.h"
#include "lib/fault.h"
#include "cluster/cluster.h"
#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/metrics.h"
#include "net/net.h"
#include "ckpt/store.h"
#include "fsview/fsview.h"
#include "proc/ckptsvc.h"
#include "ipc/intercept.h"
#include "ipc/intercept_svc.h"
#include "ipc/ipc_service.h"
#include "proc/table.h"
#include "proc/procid.h"
#include "proc/schedsvc.h"
#include "lib/procfs.h"
#include "proc/ckpt/ckpt_msg.h"
#include "proc/ckpt/ckptsvc-int.h"
#include "proc/xfer.h"
#include "proto/ckptsvc.pb-c.h"
#include "proto/ipc.pb-c.h"
#include "ckpt/ckpt.h"

#define WORK_TIMEOUT_MS (30u * 60 * 1000) /* a remote dump or restore, big images included */
/* Static: net and API handlers cannot be unregistered. */
struct krg_ckptsvc the_svc;

static void answer_node(struct krg_ckptsvc *c, struct krg_origin o, int status, const char *text, uint32_t id,
			uint32_t node, uint64_t bytes)
{
	Krg__Ckptsvc__Result res = KRG__CKPTSVC__RESULT__INIT;
	res.status = status;
	res.has_bytes = bytes != 0;
	res.bytes = bytes;
	res.text = (char *)(text ? text : "");
	res.has_node = true;
	res.node = node;
	if (id) {
		res.has_id = true;
		res.id = id;
	}
	size_t len = krg__ckptsvc__result__get_packed_size(&res);
	_cleanup_free_ uint8_t *buf = malloc(len);
	if (!buf) {
		if (o.cb)
			krg_origin_answer(c->s->net, o, -ENOMEM, "out of memory", NULL, 0);
		else if (o.call)
			krg_api_reply(o.call, -ENOMEM, "out of memory", NULL, 0);
		else
			krg_net_reply(c->s->net, o.from, o.req_id, -ENOMEM, NULL, 0);
		return;
	}
	krg__ckptsvc__result__pack(&res, buf);
	krg_origin_answer(c->s->net, o, status, res.text, buf, len);
}

void ckptsvc_answer(struct krg_ckptsvc *c, struct krg_origin o, int status, const char *text, uint32_t id)
{
	answer_node(c, o, status, text, id, c->self, 0);
}

bool ckptsvc_kdfs_on(const struct krg_ckptsvc *c)
{
	return krg_ckpt_store_kdfs() != NULL;
}

/* ---- workers ---- */

static void job_closed(uv_handle_t *h)
{
	free(h->data);
}

static void job_unlink(struct krg_ckptsvc *c, struct job *j)
{
	for (struct job **p = &c->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			return;
		}
}

static void job_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct job *j = h->data;
	b->base = j->buf + j->len;
	b->len = sizeof(j->buf) - 1 - j->len;
}

/* The metrics of a finished dump or restart (lib/metrics.h): a dump's
 * bytes are its image's, as the worker counted them (never counted
 * here: the image may be on kdfs, which this loop serves). */
static void job_count(struct krg_ckptsvc *c, const struct job *j, const char *nl, const char *end, long status,
		      uint64_t bytes)
{
	if (j->freeze)
		return;
	bool ok = nl && end == nl && status == 0;
	krg_metrics_op(j->restart ? KRG_MOP_RESTART : KRG_MOP_CHECKPOINT, ok, ok ? bytes : 0,
		       uv_now(c->s->loop) - j->t_start);
}

static void job_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct job *j = st->data;
	struct krg_ckptsvc *c = &the_svc;
	if (n > 0) {
		j->len += (size_t)n;
		if (j->len < sizeof(j->buf) - 1)
			return;
	} else if (n == 0) {
		return;
	}
	/* EOF (or full): the worker is done. */
	uv_read_stop(st);
	j->buf[j->len] = 0;
	char *nl = strchr(j->buf, '\n'), *end = NULL;
	long status = nl ? strtol(j->buf, &end, 10) : 1;
	/* A dump's answer ends with a line of its image's bytes. */
	uint64_t bytes = 0;
	char *bl = nl && !j->restart && !j->freeze && status == 0 ? strrchr(nl + 1, '\n') : NULL;
	if (bl) {
		bytes = strtoull(bl + 1, NULL, 10);
		*bl = 0;
	}
	job_unlink(c, j);
	job_count(c, j, nl, end, status, bytes);
	if (!nl || end != nl || status > 0 || status < -4095) {
		ckptsvc_answer(c, j->o, -EIO, j->restart ? "the restart worker died" : "the dump worker died", 0);
	} else if (status < 0) {
		/* The reason goes to the caller and to the log: an admin looking
		 * at a failed restart finds it here too. */
		log_warn("ckpt: %s failed: %s", j->restart ? "restart" : "dump", nl + 1);
		ckptsvc_answer(c, j->o, (int)status, nl + 1, 0);
	} else if (j->restart) {
		long pid = strtol(nl + 1, &end, 10);
		if (pid <= 0 || pid > KRG_PID_MASK)
			ckptsvc_answer(c, j->o, -EIO, "the restart worker answered nonsense", 0);
		else {
			uint32_t id = krg_procid_make(c->self, (uint32_t)pid);
			char text[64];
			snprintf(text, sizeof(text), "%u", id);
			log_info("ckpt: restarted as %u (pid %ld)", id, pid);
			ckptsvc_answer(c, j->o, 0, text, id);
		}
	} else {
		log_info("ckpt: dumped into %s (%" PRIu64 " bytes)", nl + 1, bytes);
		answer_node(c, j->o, 0, nl + 1, 0, c->self, bytes);
	}
	uv_close((uv_handle_t *)&j->pipe, job_closed);
}

/* Close every fd from 3 up but the n in keep (-1s ignored). */
static void close_all_but_these(const int *keep, size_t n)
{
	unsigned next = 3;
	for (;;) {
		int lo = -1; /* the lowest kept fd at or past next */
		for (size_t i = 0; i < n; i++)
			if (keep[i] >= (int)next && (lo < 0 || keep[i] < lo))
				lo = keep[i];
		if (lo < 0)
			break;
		if ((unsigned)lo > next)
			close_range(next, (unsigned)lo - 1, 0);
		next = (unsigned)lo + 1;
	}
	close_range(next, ~0u, 0);
}

/* Close every fd from 3 up but keep_a and keep_b (-1: none). */
static void close_all_but(int keep_a, int keep_b)
{
	int keep[2] = { keep_a, keep_b };
	close_all_but_these(keep, 2);
}

void ckptsvc_child_signals(void)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* In the worker: never returns. */
_Noreturn static void worker_main(int fd, const struct work *w)
{
	ckptsvc_child_signals();
	char msg[RESULT_MAX - 32], out[RESULT_MAX];
	int r;
	if (w->freeze) {
		struct ckpt_error err = { 0 };
		size_t n = 0;
		r = ckpt_app_freeze(w->pid, w->freeze > 0, &n, &err);
		if (r < 0)
			snprintf(msg, sizeof(msg), "%s", err.msg);
		else
			snprintf(msg, sizeof(msg), "app %u: %zu process%s %s", w->appid, n, n == 1 ? "" : "es", w->freeze > 0 ? "frozen" : "thawed");
	} else if (!w->restart) {
		/* Into kdfs when it is mounted (any node restarts it from there,
		 * also once this one is gone), else this node's store. */
		const char *store = krg_ckpt_store();
		char why[512];
		/* Nothing of krgd's held but what the dump uses (its end of
		 * kdfs's FUSE socket above all: a worker writing to kdfs when
		 * krgd dies would keep the client waiting on it, and itself in
		 * the FUSE request: a "krgd" that survives SIGKILL). */
		int keep[2 + CKPT_PERIODIC_TRACK];
		size_t nkeep = 0;
		keep[nkeep++] = fd;
		keep[nkeep++] = w->opts.has_root_pidfd ? w->opts.root_pidfd : -1;
		for (size_t i = 0; i < w->n_track && i < CKPT_PERIODIC_TRACK; i++)
			keep[nkeep++] = w->track[i].uffd;
		close_all_but_these(keep, nkeep);
		int k = krg_ckpt_store_kdfs_ready(true, why, sizeof(why));
		if (k == 0)
			store = krg_ckpt_store_kdfs();
		else if (krg_ckpt_store_kdfs())
			log_warn("ckpt: app %u goes to this node's store %s: %s", w->appid, store, why);
		struct ckpt_dump_opts o = w->opts;
		char parent[4200];
		if (w->n_track) {
			o.track = w->track;
			o.n_track = w->n_track;
			/* An increment goes next to its parent: into the other
			 * store (kdfs mounted or gone meanwhile) a full image,
			 * which arms the trackers again (periodic.c tells the two
			 * apart by the store the answer names). */
			bool into_kdfs = k == 0;
			snprintf(parent, sizeof(parent), "%s/%u/v%u", store, w->appid, w->parent_version);
			o.parent = w->parent_version && w->parent_kdfs == into_kdfs ? parent : NULL;
		}
		r = krg_ckpt_store_dump_in(store, w->pid, w->uid, w->gid, w->appid, &o, msg, sizeof(msg));
		uint64_t bytes = 0;
		if (r == 0 && krg_tree_bytes(msg, &bytes) == 0) {
			size_t l = strlen(msg);
			snprintf(msg + l, sizeof(msg) - l, "\n%" PRIu64, bytes);
		}
	} else {
		if (w->path[0]) {
			r = 0;
			snprintf(msg, sizeof(msg), "%s", w->path); /* found off the loop (kdfs) */
		} else {
			r = krg_ckpt_store_find(w->appid, w->version, w->caller, msg, sizeof(msg));
		}
		/* Standard streams the application inherits: nothing of krgd's
		 * (its log). A foreground restart (exec stream) gives real ones. */
		int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (dn >= 0) {
			for (int k = 0; k < 3; k++)
				if (k != fd)
					dup2(dn, k);
			close(dn);
		}
		/* The worker stays as the restored root's parent (and, with
		 * --new-pidns, the namespace's keeper) until the root ends. It
		 * dies with krgd, and the application with it (root_pdeathsig;
		 * the namespace's init too, on its pipe's EOF): otherwise the
		 * application would run on under the node's init, out of krg's
		 * sight. Checked after: krgd may be gone already. A worker that
		 * exited would hand the root to krgd, and no death signal can
		 * follow that (docs/checkpoint.md). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != w->krgd)
			_exit(0);
		/* The files of the node it saw when dumped (docs/fsview.md):
		 * the restore reopens them by path through the view. */
		if (r == 0 && w->fsns >= 0 && (r = krg_fsview_enter(w->fsns)) < 0)
			snprintf(msg, sizeof(msg), "entering the file view: %s", strerror(-r));
		if (r == 0) {
			struct ckpt_error err = { 0 };
			struct ckpt_pidns ns = { 0 };
			int lfd = -1;
			struct ckpt_restore_opts o = { .root_pdeathsig = SIGKILL, .ipc_listener = w->isock >= 0 ? &lfd : NULL };
			pid_t pid;
			r = ckpt_restore_opts(msg, w->new_pidns ? &ns : NULL, &o, &pid, &err);
			/* Its IPC calls wait in the kernel until krgd has the listener. */
			if (r == 0 && lfd >= 0 && (r = krg_intercept_send_fd(w->isock, lfd)) < 0) {
				snprintf(err.msg, sizeof(err.msg), "handing the IPC listener to krgd: %s", strerror(-r));
				kill(pid, SIGKILL);
			}
			if (lfd >= 0)
				close(lfd);
			if (r < 0)
				snprintf(msg, sizeof(msg), "%s", err.msg);
			else
				snprintf(msg, sizeof(msg), "%d", (int)pid);
			if (r == 0) {
				/* Answer (EOF ends the answer), then wait for the root
				 * (and be the namespace's keeper: its init exits with
				 * the root, ending the rest). */
				int n = snprintf(out, sizeof(out), "0\n%s", msg);
				(void)krg_write_all(fd, out, (size_t)n);
				close(fd);
				/* Nothing of krgd's kept open for the application's
				 * lifetime (a peer's connection it closed would stay
				 * open here): only the namespace keeper's own fds. */
				close_all_but(w->new_pidns ? ns.fd : -1, w->new_pidns ? ns.home : -1);
				int st;
				while (waitpid(pid, &st, 0) < 0)
					if (errno != EINTR) {
						st = 1 << 8;
						break;
					}
				if (w->new_pidns)
					ckpt_pidns_finish(&ns, st);
				_exit(0);
			}
		}
	}
	int n = snprintf(out, sizeof(out), "%d\n%s", r < 0 ? r : 0, msg);
	(void)krg_write_all(fd, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
	_exit(0);
}

/* A restart sees the node-local files of the node whose files the
 * application saw when it was dumped (the store's `view`, docs/fsview.md
 * "Restart"): that node's view here, unless it is this node. That node
 * down: refused in one line naming it and its paths. 0 and *fsns (-1: no
 * view), or -errno with why. */
static int restart_view(struct krg_ckptsvc *c, const struct work *w, int *fsns, char *why, size_t len)
{
	char vdir[512];
	uint32_t home;
	struct stat st;
	*fsns = -1;
	if (w->path[0]) {
		/* Read off the loop (kdfs): never touch the image here. */
		home = w->view_home;
		st.st_uid = w->img_uid;
		st.st_gid = w->img_gid;
		if (!c->s->fsview || !home || home == c->self)
			return 0;
	} else if (!c->s->fsview || krg_ckpt_store_find(w->appid, w->version, w->caller, vdir, sizeof(vdir)) < 0 ||
		   krg_ckpt_store_view(vdir, &home) < 0 || home == c->self || stat(vdir, &st) < 0) {
		return 0; /* no view to show (the worker reports a missing image) */
	}
	if (krg_cluster_node_state(c->s->cluster, home) != KRG_NODE_UP && w->recovery) {
		/* Those files died with their node: the application goes on
		 * with this node's rather than not at all. */
		log_warn("app %u: its image sees node %u's node-local files (%s), and node %u is down: it is restarted "
			 "with this node's own", w->appid, home, c->s->cfg->fsview_paths, home);
		return 0;
	}
	if (krg_cluster_node_state(c->s->cluster, home) != KRG_NODE_UP) {
		snprintf(why, len, "the image sees node %u's node-local files (%s), and node %u is down: restart it there "
			 "or once it is back", home, c->s->cfg->fsview_paths, home);
		return -EHOSTDOWN;
	}
	int r = krg_fsview_ns(c->s->fsview, home, st.st_uid, st.st_gid);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		snprintf(why, len, "cannot show node %u's node-local files (%s) here: %s", home, c->s->cfg->fsview_paths,
			 strerror(-r));
		return r;
	}
	*fsns = r;
	return 0;
}

int ckptsvc_spawn(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w)
{
	int p[2];
	int fsns = -1;
	if (w->restart) {
		char why[512];
		int r = restart_view(c, w, &fsns, why, sizeof(why));
		if (r < 0) {
			log_info("ckpt: restart of app %u refused: %s", w->appid, why);
			ckptsvc_answer(c, o, r, why, 0);
			return 0;
		}
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		int e = -errno;
		if (fsns >= 0)
			close(fsns);
		return e;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		close(p[0]);
		close(p[1]);
		if (fsns >= 0)
			close(fsns);
		return -ENOMEM;
	}
	/* Which nodes' temporary kdfs versions a dump may take for leftovers. */
	for (uint32_t n = 0; n < KRG_MAX_NODES && krg_ckpt_store_kdfs() && c->s->cluster; n++) {
		enum krg_node_state st = krg_cluster_node_state(c->s->cluster, n);
		krg_ckpt_store_kdfs_gone(n, n != c->self && (st == KRG_NODE_DOWN || st == KRG_NODE_ABSENT));
	}
	struct work wk = *w;
	wk.krgd = c->krgd;
	wk.isock = -1;
	wk.fsns = fsns;
	if (w->restart && c->s->intercept && krg_intercept_channel(c->s->intercept, &wk.isock) < 0)
		wk.isock = -1;
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(p[0]);
		close(p[1]);
		if (wk.isock >= 0)
			close(wk.isock);
		if (fsns >= 0)
			close(fsns);
		free(j);
		return r;
	}
	if (pid == 0) {
		close(p[0]);
		worker_main(p[1], &wk);
	}
	close(p[1]);
	if (wk.isock >= 0)
		close(wk.isock);
	if (fsns >= 0)
		close(fsns);
	j->o = o;
	j->restart = w->restart;
	j->freeze = w->freeze != 0;
	j->t_start = uv_now(c->s->loop);
	uv_pipe_init(c->s->loop, &j->pipe, 0);
	j->pipe.data = j;
	int r = uv_pipe_open(&j->pipe, p[0]);
	if (r == 0)
		r = uv_read_start((uv_stream_t *)&j->pipe, job_alloc, job_read);
	if (r < 0) {
		/* The worker runs on and its answer is lost: say so. */
		log_warn("ckpt: cannot read worker %d: %s", (int)pid, uv_strerror(r));
		uv_close((uv_handle_t *)&j->pipe, job_closed);
		return -EIO;
	}
	j->next = c->jobs;
	c->jobs = j;
	log_info("ckpt: %s worker %d for app %u", w->restart ? "restart" : "dump", (int)pid, w->appid);
	return 0;
}

/* ---- restart on another node: stream the version directory ---- */

#define XFER_CHUNK CKPT_XFER_CHUNK     /* one ckpt.file piece, one read per loop turn */
#define XFER_INFLIGHT (4u << 20)       /* bytes handed to the bulk channel, not yet written */
#define XFER_FILES 4096

struct tx {
	struct krg_ckptsvc *c;
	struct krg_origin o;
	bool answered, failed, all_sent, req_done;
	uint32_t to, appid, version;
	uint64_t xfer;
	uid_t owner_uid;
	gid_t owner_gid;
	struct krg_xfer_src src;
};

struct piece {
	struct tx *t;
	size_t len;
	uint8_t buf[];
};

static void answer_node(struct krg_ckptsvc *c, struct krg_origin o, int status, const char *text, uint32_t id,
			uint32_t node, uint64_t bytes);

static void tx_maybe_free(struct tx *t)
{
	if (!t->answered || t->src.pieces || !t->req_done)
		return;
	krg_xfer_src_free(&t->src);
	free(t);
}

static void tx_fail(struct tx *t, int status, const char *text)
{
	t->failed = true;
	if (!t->answered) {
		t->answered = true;
		answer_node(t->c, t->o, status, text, 0, t->to, 0);
	}
}

static void tx_pump(struct tx *t);

static void tx_done(int status, void *data)
{
	struct piece *p = data;
	struct tx *t = p->t;
	krg_xfer_src_piece_done(&t->src, p->len);
	free(p);
	if (status < 0 && !t->failed) {
		char err[128];
		snprintf(err, sizeof(err), "sending the image to node %u: %s", t->to, strerror(-status));
		tx_fail(t, status, err);
	}
	tx_pump(t);
	tx_maybe_free(t);
}

/* One piece per call from tx_done; up to XFER_INFLIGHT at the start. */
static int tx_send_one(struct tx *t)
{
	char err[1200];
	struct krg_xfer_src *sc = &t->src;
	if (krg_xfer_src_file(sc, err, sizeof(err)) < 0) {
		tx_fail(t, -EIO, err);
		return -1;
	}
	size_t want = krg_xfer_src_want(sc, XFER_CHUNK);
	_cleanup_free_ uint8_t *data = malloc(want ? want : 1);
	if (!data) {
		tx_fail(t, -ENOMEM, "out of memory");
		return -1;
	}
	int r = krg_xfer_read(sc->fd, sc->off, data, want);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot read %s/%s: %s", sc->dir, sc->names[sc->cur],
			 r != -EIO ? strerror(-r) : "file shrank");
		tx_fail(t, -EIO, err);
		return -1;
	}
	Krg__Ckptsvc__File f = KRG__CKPTSVC__FILE__INIT;
	f.xfer = t->xfer;
	f.appid = t->appid;
	f.version = t->version;
	f.owner_uid = (uint32_t)t->owner_uid;
	f.owner_gid = (uint32_t)t->owner_gid;
	f.name = sc->names[sc->cur];
	f.offset = sc->off;
	f.data.data = data;
	f.data.len = want;
	bool last = sc->off + want == sc->size;
	f.has_last = f.last = last;
	f.has_end = f.end = last && sc->cur + 1 == sc->n;
	size_t len = krg__ckptsvc__file__get_packed_size(&f);
	struct piece *p = malloc(sizeof(*p) + len);
	if (!p) {
		tx_fail(t, -ENOMEM, "out of memory");
		return -1;
	}
	p->t = t;
	p->len = len;
	krg__ckptsvc__file__pack(&f, p->buf);
	r = krg_xfer_src_send(sc, t->c->s->net, t->to, "ckpt.file", p->buf, len, tx_done, p);
	if (r < 0) {
		free(p);
		snprintf(err, sizeof(err), "sending the image to node %u: %s", t->to, strerror(-r));
		tx_fail(t, r, err);
		return -1;
	}
	if (krg_xfer_src_sent(sc, want, last))
		t->all_sent = true;
	return 0;
}

static void tx_pump(struct tx *t)
{
	if (t->failed || t->all_sent || t->src.inflight >= XFER_INFLIGHT)
		return;
	tx_send_one(t);
}

static void tx_reply(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct tx *t = data;
	t->req_done = true;
	char err[128];
	if (status) {
		snprintf(err, sizeof(err), "node %u: %s", t->to, krg_request_why(status));
		tx_fail(t, status, err);
	} else {
		Krg__Ckptsvc__Result *res = krg__ckptsvc__result__unpack(NULL, reply->len, reply->body);
		if (!res || res->status > 0 || res->status < -4095)
			tx_fail(t, -EBADMSG, "malformed answer from the target node");
		else if (res->status)
			tx_fail(t, res->status, res->text);
		else if (!t->answered) {
			t->answered = true;
			t->failed = true; /* nothing more to send */
			answer_node(t->c, t->o, 0, res->text, res->has_id ? res->id : 0, t->to, 0);
		}
		if (res)
			krg__ckptsvc__result__free_unpacked(res, NULL);
	}
	tx_maybe_free(t);
}

/* On the holder: permission check, list the directory, ask the target,
 * stream. -errno (origin not answered) or 0. */
static int copy_one(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Restart *q, uid_t uid, bool periodic)
{
	static uint32_t counter;
	char path[512], err[600];
	if (q->node >= KRG_MAX_NODES || !krg_net_peer_up(c->s->net, q->node)) {
		snprintf(err, sizeof(err), "node %u is unreachable", q->node);
		ckptsvc_answer(c, o, -EHOSTUNREACH, err, 0);
		return 0;
	}
	int r = krg_ckpt_store_find(q->appid, q->version, uid, path, sizeof(path));
	if (r < 0) {
		ckptsvc_answer(c, o, r, path, 0);
		return 0;
	}
	const char *v = strrchr(path, '/');
	struct stat st;
	if (!v || v[1] != 'v' || stat(path, &st) < 0)
		return -EIO;
	struct tx *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->c = c;
	t->o = o;
	t->to = q->node;
	t->appid = q->appid;
	t->version = (uint32_t)strtoul(v + 2, NULL, 10);
	t->xfer = ((uint64_t)c->self << 32) | ++counter;
	t->owner_uid = st.st_uid;
	t->owner_gid = st.st_gid;
	t->req_done = true;
	t->src.fd = -1;
	r = krg_xfer_src_open(&t->src, path, ckpt_file_name_ok, XFER_FILES);
	if (r < 0) {
		t->answered = true;
		tx_maybe_free(t);
		return r == -ENOENT ? r : -EIO;
	}
	Krg__Ckptsvc__Recv m = KRG__CKPTSVC__RECV__INIT;
	m.xfer = t->xfer;
	m.appid = t->appid;
	m.version = t->version;
	m.uid = (uint32_t)uid;
	m.owner_uid = (uint32_t)t->owner_uid;
	m.owner_gid = (uint32_t)t->owner_gid;
	m.has_copy_only = m.copy_only = q->copy_only;
	m.has_new_pidns = m.new_pidns = q->new_pidns;
	m.has_sysv_keep = m.sysv_keep = q->sysv_keep;
	m.has_periodic = m.periodic = periodic;
	uint8_t buf[128];
	size_t len = krg__ckptsvc__recv__pack(&m, buf);
	r = krg_net_request(c->s->net, t->to, "ckpt.recv", buf, len, WORK_TIMEOUT_MS, tx_reply, t);
	if (r < 0) {
		t->answered = true;
		tx_maybe_free(t);
		return r;
	}
	t->req_done = false;
	log_info("ckpt: sending %s (%zu files) to node %u for a restart", path, t->src.n, t->to);
	for (int i = 0; i < 4 && !t->failed && !t->all_sent; i++)
		tx_pump(t);
	return 0;
}

/* An incremental version goes with the versions it builds on (docs/
 * checkpoint.md "Incremental images"): they are sent first, oldest
 * first, copy only; one the target has already is not sent again (the
 * restore there checks it is the same image). */
struct chain_tx {
	struct krg_ckptsvc *c;
	struct krg_origin o;           /* the caller's: answered by the last copy */
	Krg__Ckptsvc__Restart q;       /* scalar fields only */
	uid_t uid;
	uint32_t v[CKPT_MAX_CHAIN + 1]; /* the parents, oldest first */
	size_t n, next;
};

static void chain_next(struct chain_tx *x);

static void chain_step(void *data, int status, const char *text, const void *result, size_t len)
{
	struct chain_tx *x = data;
	char want[32];
	snprintf(want, sizeof(want), ": %s", strerror(EEXIST));
	if (status < 0 && !(text && strstr(text, want))) {
		char err[700];
		snprintf(err, sizeof(err), "copying v%u, which v%u builds on: %s", x->v[x->next - 1], x->q.version, text ? text : strerror(-status));
		ckptsvc_answer(x->c, x->o, status, err, 0);
		free(x);
		return;
	}
	chain_next(x);
}

static void chain_next(struct chain_tx *x)
{
	Krg__Ckptsvc__Restart q = x->q;
	struct krg_origin o = x->o;
	bool last = x->next == x->n;
	if (!last) {
		q.version = x->v[x->next++];
		q.has_copy_only = q.copy_only = true;
		q.has_new_pidns = q.new_pidns = false;
		o = (struct krg_origin){ .cb = chain_step, .cb_data = x };
	}
	int r = copy_one(x->c, o, &q, x->uid, false);
	if (r < 0) {
		char err[160];
		snprintf(err, sizeof(err), "copying v%u to node %u: %s", q.version, q.node, strerror(-r));
		ckptsvc_answer(x->c, x->o, r, err, 0);
	}
	if (last || r < 0)
		free(x);
}

int ckptsvc_copy(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Restart *q, uid_t uid, bool periodic)
{
	char path[512], name[64];
	/* Periodic copies: the target has the chain already (periodic.c). */
	if (periodic || krg_ckpt_store_find(q->appid, q->version, uid, path, sizeof(path)) < 0 ||
	    ckpt_image_parent(path, name, sizeof(name)) < 0)
		return copy_one(c, o, q, uid, periodic);
	struct chain_tx *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	*x = (struct chain_tx){ .c = c, .o = o, .q = *q, .uid = uid };
	const char *v = strrchr(path, '/');
	x->q.version = v && v[1] == 'v' ? (uint32_t)strtoul(v + 2, NULL, 10) : q->version;
	x->q.base.descriptor = q->base.descriptor;
	uint32_t rev[CKPT_MAX_CHAIN + 1];
	size_t n = 0;
	while (n < CKPT_MAX_CHAIN && name[0] == 'v') {
		rev[n++] = (uint32_t)strtoul(name + 1, NULL, 10);
		char dir[600];
		snprintf(dir, sizeof(dir), "%s/%u/v%u", krg_ckpt_store(), q->appid, rev[n - 1]);
		if (ckpt_image_parent(dir, name, sizeof(name)) < 0)
			break;
	}
	for (size_t i = 0; i < n; i++)
		x->v[i] = rev[n - 1 - i];
	x->n = n;
	log_info("ckpt: app %u v%u builds on %zu older versions: they go to node %u first", q->appid, x->q.version, n, q->node);
	chain_next(x);
	return 0;
}

/* ---- on the process's node ---- */

/* The root of pid's krg run tree: its ancestor whose parent is krgd. */
static pid_t app_root(pid_t pid, pid_t krgd)
{
	for (int depth = 0; depth < 4096; depth++) {
		char path[64], buf[1024];
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (krg_read_small(path, buf, sizeof(buf)) < 0)
			break;
		const char *p = strrchr(buf, ')');
		pid_t ppid = 0;
		if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1 || ppid <= 1 || ppid == krgd)
			break;
		pid = ppid;
	}
	return pid;
}

int ckptsvc_dump_local(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Dump *d, uid_t uid)
{
	return ckptsvc_dump_local_incr(c, o, d, uid, NULL, 0, 0, false);
}

int ckptsvc_dump_local_incr(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Dump *d, uid_t uid,
			    const struct ckpt_track *track, size_t n_track, uint32_t parent_version, bool parent_kdfs)
{
	uint32_t pid = krg_procid_pid(d->id);
	if (krg_procid_home(d->id) != c->self || pid == 0 || (pid_t)pid == c->krgd)
		return -ESRCH;
	if (d->has_kill_signal && (d->kill_signal < 1 || d->kill_signal > 64))
		return -EINVAL;
	if (d->app && procfs_is_descendant((pid_t)pid, c->krgd))
		pid = (uint32_t)app_root((pid_t)pid, c->krgd);
	int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pfd < 0 && errno != ENOSYS)
		return -ESRCH;
	_cleanup_close_ int fd = pfd;
	if (!procfs_is_descendant((pid_t)pid, c->krgd))
		return -ESRCH; /* not a krg process */
	uid_t ruid, suid;
	if (procfs_uids((pid_t)pid, &ruid, &suid) < 0)
		return -ESRCH;
	if (uid != 0 && uid != ruid && uid != suid)
		return -EPERM;
	/* What was read above is the pidfd's process only if it is still
	 * alive; the worker checks it again once the process is frozen. */
	if (fd >= 0 && poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 0) != 0)
		return -ESRCH;
	/* Kerrighed's CHECKPOINTABLE (docs/sched.md): checked on the process
	 * dumped, the application's root with -a. Answered here so the
	 * refusal names the process and the way out. */
	struct krg_caps caps;
	uint32_t cid = krg_procid_make(c->self, pid);
	krg_caps_get(c->s->cluster, c->self, cid, (pid_t)pid, &caps);
	if (!(caps.eff & KRG_CAP_CHECKPOINTABLE)) {
		char e[200];
		snprintf(e, sizeof(e),
			 "process %u lacks the CHECKPOINTABLE capability (krg capset -e CHECKPOINTABLE -p %u)", cid, cid);
		log_info("ckpt.dump %u: refused, %s", d->id, e);
		ckptsvc_answer(c, o, -EPERM, e, d->id);
		return 0;
	}
	if (d->has_every_ms) {
		periodic_set(c, o, d, cid, uid);
		return 0;
	}
	char pp[64];
	struct stat st;
	snprintf(pp, sizeof(pp), "/proc/%u", pid);
	if (stat(pp, &st) < 0)
		return -ESRCH;
	/* The image belongs to the process's user, who may restart it; a
	 * process whose real or saved uid is another (a set-uid program, a
	 * root daemon running with a dropped euid) asks for identities that
	 * user may not have: its image is root's, as only root may restore
	 * it (restore's check_owner). */
	if (ruid != st.st_uid || suid != st.st_uid)
		st.st_uid = 0, st.st_gid = 0;
	struct work w = {
		.pid = (pid_t)pid, .uid = st.st_uid, .gid = st.st_gid, .appid = krg_procid_make(c->self, pid),
		.freeze = d->freeze ? 1 : d->unfreeze ? -1 : 0,
		.opts = { .kill = d->kill, .kill_sig = (int)d->kill_signal, .stop = d->stop, .snapshot_files = d->snapshot_files,
			  .ignore_unsupported = d->ignore_unsupported,
			  .description = d->description, .has_root_pidfd = fd >= 0, .root_pidfd = fd,
			  /* whose node-local files it sees: restored in that view elsewhere */
			  .view_home = krg_fsview_home_of(c->s->fsview, (pid_t)pid) },
	};
	for (size_t i = 0; i < n_track && i < CKPT_PERIODIC_TRACK; i++)
		w.track[w.n_track++] = track[i];
	w.parent_version = w.n_track ? parent_version : 0;
	w.parent_kdfs = parent_kdfs;
	if (!w.freeze && !d->ignore_unsupported && c->s->ipc)
		return ckptsvc_sysv_check_then_spawn(c, o, &w, d->id);
	return ckptsvc_spawn(c, o, &w);
}

/* The image in this node's store (the node's own, or a copy the holder
 * sends): the way of a cluster without kdfs, and of images made while
 * kdfs was not mounted. */
static int restart_store(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Restart *q, uid_t uid)
{
	if (q->sysv_only) {
		/* This node's copy of the version (krg restart --foreground
		 * put it here), before krg-restart runs here. */
		struct work w = { .restart = true, .appid = q->appid, .version = q->version, .caller = uid, .sysv_only = true };
		return ckptsvc_sysv_restore_then_spawn(c, o, &w);
	}
	if (krg_procid_home(q->appid) != c->self)
		return -ENOENT;
	if (q->has_node && q->node != c->self)
		return ckptsvc_copy(c, o, q, uid, false);
	if (q->copy_only) {
		/* Already where it is wanted: say where, if the caller may have it. */
		char path[512];
		int r = krg_ckpt_store_find(q->appid, q->version, uid, path, sizeof(path));
		ckptsvc_answer(c, o, r < 0 ? r : 0, path, 0);
		return 0;
	}
	struct work w = { .restart = true, .appid = q->appid, .version = q->version, .caller = uid, .new_pidns = q->new_pidns,
			  .sysv_keep = q->sysv_keep };
	return ckptsvc_sysv_restore_then_spawn(c, o, &w);
}

static void forward_o(struct krg_ckptsvc *c, struct krg_origin o, uint32_t node, uint32_t id, const char *type,
		      const ProtobufCMessage *m);

/* Not in kdfs (ckptsvc_restart_here): in the holder's store. Another
 * node's: it sends a copy here, as without kdfs. */
static int restart_missing(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w,
			   const Krg__Ckptsvc__Restart *q)
{
	uint32_t holder = krg_procid_home(q->appid);
	if (holder == c->self || q->sysv_only)
		return restart_store(c, o, q, w->caller);
	Krg__Ckptsvc__Restart f = *q;
	f.base.n_unknown_fields = 0;
	f.base.unknown_fields = NULL;
	f.has_node = true;
	f.node = c->self;
	f.has_uid = true;
	f.uid = (uint32_t)w->caller;
	forward_o(c, o, holder, q->appid, "ckpt.restart", &f.base);
	return 0;
}

static int restart_local(struct krg_ckptsvc *c, struct krg_origin o, const Krg__Ckptsvc__Restart *q, uid_t uid)
{
	/* With kdfs, the node that runs it restores it from there: nothing
	 * is copied, and the node that wrote it may be gone. */
	if (ckptsvc_kdfs_on(c) && (!q->has_node || q->node == c->self)) {
		struct work w = { .restart = true, .appid = q->appid, .version = q->version, .caller = uid,
				  .new_pidns = q->new_pidns, .sysv_only = q->sysv_only, .sysv_keep = q->sysv_keep };
		return ckptsvc_restart_here(c, o, &w, q, restart_missing);
	}
	return restart_store(c, o, q, uid);
}

int ckptsvc_restart_on(struct krg_ckptsvc *c, struct krg_origin o, uint32_t appid, uint32_t version, uint32_t node,
		       bool sysv_keep)
{
	Krg__Ckptsvc__Restart q = KRG__CKPTSVC__RESTART__INIT;
	q.appid = appid;
	q.has_version = version != 0;
	q.version = version;
	q.has_node = true;
	q.node = node;
	q.has_uid = true;
	q.uid = 0; /* krgd's own work */
	q.has_sysv_keep = q.sysv_keep = sysv_keep;
	if (node == c->self)
		return restart_local(c, o, &q, 0);
	forward_o(c, o, node, appid, "ckpt.restart", &q.base);
	return 0;
}

/* The line for a failure about process or app id, which node (its home,
 * or the node a request went to) was asked. */
static const char *why_at(int r, char *buf, size_t len, uint32_t id, uint32_t node)
{
	switch (r) {
	case -ESRCH: snprintf(buf, len, "no krg process %u", id); break;
	case -EPERM: snprintf(buf, len, "process %u: operation not permitted", id); break;
	case -ENOENT: snprintf(buf, len, "no image of app %u on node %u", id, node); break;
	case -ETIMEDOUT: snprintf(buf, len, "node %u did not answer in time", node); break;
	case -EHOSTUNREACH:
	case -ECONNRESET: snprintf(buf, len, "node %u is unreachable (it may have died during the operation)", node); break;
	default: snprintf(buf, len, "%s", strerror(-r));
	}
	return buf;
}

static const char *why(int r, char *buf, size_t len, uint32_t id)
{
	return why_at(r, buf, len, id, krg_procid_home(id));
}

uint32_t ckptsvc_result_id(int status, const void *result, size_t len)
{
	uint32_t id = 0;
	Krg__Ckptsvc__Result *res = status == 0 ? krg__ckptsvc__result__unpack(NULL, len, result) : NULL;
	if (res && res->has_id)
		id = res->id;
	if (res)
		krg__ckptsvc__result__free_unpacked(res, NULL);
	return id;
}

const char *ckptsvc_why(int r, char *buf, size_t len, uint32_t id)
{
	return why(r, buf, len, id);
}

static void on_net(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data)
{
	struct krg_ckptsvc *c = &the_svc;
	if (!krg_net_request_open(net, from, req_id, !c->running))
		return;
	struct krg_origin o = { .from = from, .req_id = req_id };
	char err[256];
	int r;
	uint32_t id;
	if (!strcmp(msg->type, "ckpt.dump")) {
		Krg__Ckptsvc__Dump *d = krg__ckptsvc__dump__unpack(NULL, msg->len, msg->body);
		if (!d || !ckpt_dump_valid(d)) {
			if (d)
				krg__ckptsvc__dump__free_unpacked(d, NULL);
			return krg_net_refuse_malformed(net, from, req_id, "ckpt.dump");
		}
		id = d->id;
		r = ckptsvc_dump_local(c, o, d, (uid_t)d->uid);
		log_info("ckpt.dump %u kill %d stop %d freeze %d unfreeze %d app %d for uid %u from node %u: %s", d->id, d->kill, d->stop, d->freeze,
			 d->unfreeze, d->app, d->uid, from,
			 r ? strerror(-r) : "started");
		krg__ckptsvc__dump__free_unpacked(d, NULL);
	} else {
		Krg__Ckptsvc__Restart *q = krg__ckptsvc__restart__unpack(NULL, msg->len, msg->body);
		if (!q || !ckpt_restart_valid(q)) {
			if (q)
				krg__ckptsvc__restart__free_unpacked(q, NULL);
			return krg_net_refuse_malformed(net, from, req_id, "ckpt.restart");
		}
		id = q->appid;
		r = restart_local(c, o, q, (uid_t)q->uid);
		log_info("ckpt.restart %u v%u%s for uid %u from node %u: %s", q->appid, q->version, q->copy_only ? " (copy only)" : "", q->uid, from,
			 r ? strerror(-r) : "started");
		krg__ckptsvc__restart__free_unpacked(q, NULL);
	}
	if (r < 0)
		ckptsvc_answer(c, o, r, why(r, err, sizeof(err), id), 0);
}

/* ---- API: forward to the node, or do it here ---- */

static void fwd_failed(struct krg_origin o, int status, bool bad_answer, uint32_t id, uint32_t node)
{
	char err[160];
	if (bad_answer)
		ckptsvc_answer(&the_svc, o, -EBADMSG, "malformed answer from the process's node", 0);
	else
		ckptsvc_answer(&the_svc, o, status, why_at(status, err, sizeof(err), id, node), 0);
}

static const struct krg_fwd_ops fwd_ops = { &krg__ckptsvc__result__descriptor, fwd_failed };

/* 0 if node can be asked; else the API call is answered. */
static int reachable(struct krg_ckptsvc *c, struct krg_api_call *call, uint32_t node)
{
	char err[128];
	if (node >= KRG_MAX_NODES || !krg_config_node(c->s->cfg, node)) {
		snprintf(err, sizeof(err), "no node %u in this cluster", node);
		krg_api_reply(call, -EHOSTUNREACH, err, NULL, 0);
		return -1;
	}
	enum krg_node_state st = krg_cluster_node_state(c->s->cluster, node);
	if (st != KRG_NODE_UP) {
		snprintf(err, sizeof(err), "node %u is %s", node, krg_node_state_name(st));
		krg_api_reply(call, -EHOSTDOWN, err, NULL, 0);
		return -1;
	}
	return 0;
}

/* The request to node, its answer (or failure) to o. */
static void forward_o(struct krg_ckptsvc *c, struct krg_origin o, uint32_t node, uint32_t id, const char *type,
		      const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		ckptsvc_answer(c, o, -ENOMEM, "out of memory", 0);
		return;
	}
	protobuf_c_message_pack(m, buf);
	int r = krg_forward(c->s->net, &fwd_ops, o, node, id, type, buf, len, WORK_TIMEOUT_MS);
	if (r == -ENOMEM)
		ckptsvc_answer(c, o, -ENOMEM, "out of memory", 0);
	else if (r < 0)
		fwd_failed(o, r, false, id, node);
}

static void forward(struct krg_ckptsvc *c, struct krg_api_call *call, uint32_t node, uint32_t id, const char *type,
		    const ProtobufCMessage *m)
{
	forward_o(c, (struct krg_origin){ .call = call }, node, id, type, m);
}

/* An API call's request, or NULL once the call is answered (krgd is
 * stopping, or the body does not parse as desc). */
static void *api_request(struct krg_ckptsvc *c, struct krg_api_call *call, const ProtobufCMessageDescriptor *desc)
{
	if (!c->running) {
		krg_api_reply(call, -ESHUTDOWN, "krgd is stopping", NULL, 0);
		return NULL;
	}
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, call->len, call->body);
	if (!m) {
		char err[96];
		snprintf(err, sizeof(err), "malformed %s request", call->command);
		krg_api_reply(call, -EBADMSG, err, NULL, 0);
	}
	return m;
}

/* Answers an API call the local start refused (r < 0); else the job answers. */
static void api_started(struct krg_api_call *call, int r, uint32_t id)
{
	char err[256];
	if (r < 0)
		krg_api_reply(call, r, why(r, err, sizeof(err), id), NULL, 0);
}

static void on_api_dump(struct krg_api_call *call, void *data)
{
	struct krg_ckptsvc *c = &the_svc;
	Krg__Ckptsvc__Dump *d = api_request(c, call, &krg__ckptsvc__dump__descriptor);
	if (!d)
		return;
	uint32_t node = krg_procid_home(d->id);
	d->has_uid = true;
	d->uid = (uint32_t)call->uid; /* from SO_PEERCRED, never from the body */
	if (krg_procid_pid(d->id) == 0) {
		krg_api_reply(call, -EINVAL, "not a krg process id", NULL, 0);
	} else if (node == c->self) {
		struct krg_origin o = { .call = call };
		api_started(call, ckptsvc_dump_local(c, o, d, call->uid), d->id);
	} else if (reachable(c, call, node) == 0) {
		forward(c, call, node, d->id, "ckpt.dump", &d->base);
	}
	krg__ckptsvc__dump__free_unpacked(d, NULL);
}

static void on_api_restart(struct krg_api_call *call, void *data)
{
	struct krg_ckptsvc *c = &the_svc;
	char err[96];
	Krg__Ckptsvc__Restart *q = api_request(c, call, &krg__ckptsvc__restart__descriptor);
	if (!q)
		return;
	uint32_t holder = krg_procid_home(q->appid);
	q->has_uid = true;
	q->uid = (uint32_t)call->uid;
	q->has_sysv_keep = q->sysv_keep = false; /* eviction's, not a caller's */
	if (krg_procid_pid(q->appid) == 0) {
		krg_api_reply(call, -EINVAL, "not an app id", NULL, 0);
	} else if (q->has_node && (q->node >= KRG_MAX_NODES || !krg_config_node(c->s->cfg, q->node))) {
		snprintf(err, sizeof(err), "no node %u in this cluster", q->node);
		krg_api_reply(call, -EHOSTUNREACH, err, NULL, 0);
	} else if (q->sysv_only && q->has_node && q->node != c->self) {
		if (reachable(c, call, q->node) == 0)
			forward(c, call, q->node, q->appid, "ckpt.restart", &q->base);
	} else if (ckptsvc_kdfs_on(c) && !q->sysv_only && !(q->has_node && q->node == holder)) {
		/* The node that runs it reads it from kdfs (no copy); without
		 * -n the holder, or this node when the holder is down. */
		uint32_t target = q->has_node ? q->node
			: krg_cluster_node_state(c->s->cluster, holder) == KRG_NODE_UP ? holder : c->self;
		q->has_node = true;
		q->node = target;
		if (target == c->self) {
			struct krg_origin o = { .call = call };
			api_started(call, restart_local(c, o, q, call->uid), q->appid);
		} else if (reachable(c, call, target) == 0) {
			forward(c, call, target, q->appid, "ckpt.restart", &q->base);
		}
	} else if (holder == c->self || q->sysv_only) {
		struct krg_origin o = { .call = call };
		api_started(call, restart_local(c, o, q, call->uid), q->appid);
	} else if (reachable(c, call, holder) == 0) {
		forward(c, call, holder, q->appid, "ckpt.restart", &q->base);
	}
	krg__ckptsvc__restart__free_unpacked(q, NULL);
}

/* ---- service ---- */

static void log_removed(const char *path, uint64_t bytes, void *data)
{
	log_info("checkpoint service: removed %s (%" PRIu64 " bytes), half-written by a krgd or krg that died", path, bytes);
}

/* Its start hook (lib/service.h): *out its state. */
static int ckptsvc_start(struct krg_services *s, void **out, char *err, size_t errlen)
{
	struct krg_ckptsvc *c = &the_svc;
	static bool registered;
	if (c->running) {
		snprintf(err, errlen, "checkpoint service already running");
		return -EBUSY;
	}
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->self = s->cfg->node_id;
	c->krgd = getpid();
	if (!registered) {
		int r;
		if ((r = krg_net_handle(s->net, "ckpt.dump", on_net, c)) < 0 ||
		    (r = krg_net_handle(s->net, "ckpt.restart", on_net, c)) < 0 ||
		    (r = krg_net_handle(s->net, "ckpt.recv", ckptsvc_on_recv, c)) < 0 ||
		    (r = krg_net_handle(s->net, "ckpt.file", ckptsvc_on_file, c)) < 0 ||
		    (r = krg_api_register(s->api, "ckpt.dump", false, on_api_dump, c)) < 0 ||
		    (r = krg_api_register(s->api, "ckpt.restart", false, on_api_restart, c)) < 0) {
			snprintf(err, errlen, "checkpoint service: cannot register handlers: %s", strerror(-r));
			return r;
		}
		registered = true;
	}
	c->running = true;
	if (c->s->cluster) {
		int pr = periodic_start(c);
		if (pr < 0) {
			c->running = false;
			snprintf(err, errlen, "checkpoint service: cannot start periodic checkpoints: %s", strerror(-pr));
			return pr;
		}
	}
	s->evict_ckpt = ckptsvc_evict;
	s->evict_data = c;
	/* kdfs is on on every node or on none (docs/kdfs.md). */
	krg_ckpt_store_kdfs_set(s->cfg->kdfs_mount, c->self);
	if (krg_ckpt_store_kdfs())
		log_info("checkpoint service: image store %s, %s while kdfs is not mounted", krg_ckpt_store_kdfs(),
			 krg_ckpt_store());
	else
		log_info("checkpoint service: image store %s", krg_ckpt_store());
	int r = krg_ckpt_store_clean(log_removed, NULL);
	if (r < 0)
		log_warn("checkpoint service: cleaning what a previous krgd left in %s: %s", krg_ckpt_store(), strerror(-r));
	*out = c;
	return 0;
}

static void ckptsvc_stop(void *state)
{
	struct krg_ckptsvc *c = state;
	if (!c || !c->running)
		return;
	c->running = false;
	c->s->evict_ckpt = NULL;
	periodic_stop(c);
	ckptsvc_rx_stop();
	/* Workers run on to their end; nobody will read their answer. */
	while (c->jobs) {
		struct job *j = c->jobs;
		c->jobs = j->next;
		ckptsvc_answer(c, j->o, -ESHUTDOWN, "krgd is stopping", 0);
		uv_read_stop((uv_stream_t *)&j->pipe);
		uv_close((uv_handle_t *)&j->pipe, job_closed);
	}
}

static void ckptsvc_node_down(void *state, uint32_t node, uint64_t epoch)
{
	(void)epoch;
	periodic_node_down(state, node);
}

const struct krg_service krg_service_ckpt = {
	.name = "ckpt",
	/* the table's process kinds, capabilities, the IPC objects an
	 * application made, interception of a restarted application; exec
	 * reaps what a restart adopts */
	.needs = (const char *const[]){ "table", "sched", "ipc", "ipc-intercept", "exec", "fsview", NULL },
	.start = ckptsvc_start,
	.stop = ckptsvc_stop,
	.node_down = ckptsvc_node_down,
	.msg_types = (const char *const[]){ "ckpt.dump", "ckpt.restart", "ckpt.recv", "ckpt.file", NULL },
	.api_cmds = (const char *const[]){ "ckpt.dump", "ckpt.restart", "ckpt.every.list", NULL },
};
