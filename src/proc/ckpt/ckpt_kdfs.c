/* ckpt_kdfs.c — the kdfs image store seen from krgd's loop
 * (docs/checkpoint.md, "Images on kdfs").
 *
 * krgd serves the kdfs mount on its own event loop, so the loop never
 * touches a file there (it would wait on itself). Nor may a thread of
 * krgd: a thread waiting on the mount keeps a killed krgd from exiting,
 * and with it the socket its FUSE client waits on. The blocking part is
 * done by a short-lived fork of krgd (a "kio" child: krgd's fds closed,
 * killed with krgd) that writes what it found into a pipe the loop reads:
 * - a restart: the image looked up and checked (krg_ckpt_store_find_in:
 *   owner and modes), its `view` file and sysvipc.img read; the restart
 *   goes on in the loop with that, and the worker restores that very
 *   directory;
 * - the removal of superseded periodic versions (periodic.c).
 * The exec service reaps these children as it reaps every unknown one. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ckpt/ckpt.h"
#include "ckpt/store.h"
#include "lib/fileio.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "proc/ckpt/ckptsvc-int.h"

#define KIO_MAX (64u << 20) /* a sysvipc.img is far smaller */

/* ---- kio: a fork that does blocking kdfs work ---- */

struct kio {
	uv_pipe_t pipe;
	uint8_t *buf;
	size_t len, cap;
	bool failed;
	void (*done)(void *data, const uint8_t *buf, size_t len);
	void *data;
};

static void kio_closed(uv_handle_t *h)
{
	struct kio *k = h->data;
	free(k->buf);
	free(k);
}

static void kio_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct kio *k = h->data;
	if (k->cap - k->len < 65536 && k->cap < KIO_MAX) {
		size_t cap = k->cap ? k->cap * 2 : 65536;
		uint8_t *nb = realloc(k->buf, cap);
		if (nb) {
			k->buf = nb;
			k->cap = cap;
		}
	}
	b->base = (char *)k->buf + k->len;
	b->len = k->cap - k->len;
}

static void kio_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct kio *k = st->data;
	if (n > 0) {
		k->len += (size_t)n;
		if (k->len < k->cap || k->cap < KIO_MAX)
			return;
		k->failed = true; /* more than KIO_MAX: not ours */
	} else if (n == 0) {
		return;
	} else if (n != UV_EOF) {
		k->failed = true;
	}
	uv_read_stop(st);
	k->done(k->data, k->failed ? NULL : k->buf, k->failed ? 0 : k->len);
	uv_close((uv_handle_t *)&k->pipe, kio_closed);
}

/* Run child(fd, arg) in a fork; done(data, what it wrote, its length)
 * in the loop once it ends (NULL, 0: it died or wrote too much). 0, or
 * -errno (done not called). */
static int kio_start(struct krg_ckptsvc *c, void (*child)(int fd, void *arg), void *arg,
		     void (*done)(void *data, const uint8_t *buf, size_t len), void *data)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	struct kio *k = calloc(1, sizeof(*k));
	if (!k) {
		close(p[0]);
		close(p[1]);
		return -ENOMEM;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(p[0]);
		close(p[1]);
		free(k);
		return r;
	}
	if (pid == 0) {
		ckptsvc_child_signals();
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->krgd)
			_exit(0);
		/* Nothing of krgd's: above all not its end of the FUSE client's
		 * socket, which would keep the client waiting on a dead krgd. */
		int fd = p[1];
		if (fd > 3)
			close_range(3, (unsigned)fd - 1, 0);
		close_range((unsigned)fd + 1, ~0u, 0);
		child(fd, arg);
		_exit(0);
	}
	close(p[1]);
	k->done = done;
	k->data = data;
	uv_pipe_init(c->s->loop, &k->pipe, 0);
	k->pipe.data = k;
	int r = uv_pipe_open(&k->pipe, p[0]);
	if (r == 0)
		r = uv_read_start((uv_stream_t *)&k->pipe, kio_alloc, kio_read);
	if (r < 0) {
		uv_close((uv_handle_t *)&k->pipe, kio_closed);
		return -EIO;
	}
	return 0;
}

/* ---- a restart from kdfs ---- */

struct probe {
	struct krg_ckptsvc *c;
	struct krg_origin o;
	struct work w;
	Krg__Ckptsvc__Restart q;
	bool has_q;
	ckptsvc_missing_fn missing;
};

/* What the child found: this, then sysv_len bytes of sysvipc.img (a
 * pipe between two forks of one krgd: never on the network). */
struct found {
	int32_t r, sysv_r;
	uint32_t home, uid, gid;
	uint64_t sysv_len, sysv_n;
	char msg[512];
	char sysv_err[256];
};

static void probe_child(int fd, void *arg)
{
	struct probe *p = arg;
	struct found f = { 0 };
	uint8_t *saved = NULL;
	size_t len = 0, n = 0;
	struct stat st;
	f.r = krg_ckpt_store_find_in(krg_ckpt_store_kdfs(), p->w.appid, p->w.version, p->w.caller, f.msg,
				     sizeof(f.msg));
	if (f.r == 0 && lstat(f.msg, &st) < 0) {
		f.r = -errno;
		snprintf(f.msg, sizeof(f.msg), "the image of app %u went away: %s", p->w.appid, strerror(-f.r));
	}
	if (f.r == 0) {
		f.uid = st.st_uid;
		f.gid = st.st_gid;
		if (krg_ckpt_store_view(f.msg, &f.home) < 0)
			f.home = 0;
		struct ckpt_error err = { 0 };
		f.sysv_r = ckpt_sysv_read(f.msg, &saved, &len, &n, &err);
		snprintf(f.sysv_err, sizeof(f.sysv_err), "%s", err.msg);
		if (f.sysv_r == 0) {
			f.sysv_len = len;
			f.sysv_n = n;
		}
	}
	(void)krg_write_all(fd, &f, sizeof(f));
	if (f.sysv_len)
		(void)krg_write_all(fd, saved, len);
}

static void probe_done(void *data, const uint8_t *buf, size_t len)
{
	struct probe *p = data;
	struct krg_ckptsvc *c = p->c;
	struct found f;
	char err[256];
	int r = 0;
	if (len >= sizeof(f))
		memcpy(&f, buf, sizeof(f));
	if (!c->running) {
		ckptsvc_answer(c, p->o, -ESHUTDOWN, "krgd is stopping", 0);
	} else if (len < sizeof(f) || f.msg[sizeof(f.msg) - 1] || f.sysv_err[sizeof(f.sysv_err) - 1] ||
		   f.r > 0 || f.r < -4095 || (f.r == 0 && len != sizeof(f) + f.sysv_len)) {
		ckptsvc_answer(c, p->o, -EIO, "looking for the image in kdfs failed (the helper died)", 0);
	} else if (f.r == -ENOENT && p->missing) {
		r = p->missing(c, p->o, &p->w, p->has_q ? &p->q : NULL);
		if (r < 0)
			ckptsvc_answer(c, p->o, r, ckptsvc_why(r, err, sizeof(err), p->w.appid), 0);
		r = 0;
	} else if (f.r < 0) {
		log_warn("ckpt: restart of app %u from kdfs refused: %s", p->w.appid, f.msg);
		ckptsvc_answer(c, p->o, f.r, f.msg, 0);
	} else {
		struct work w = p->w;
		snprintf(w.path, sizeof(w.path), "%s", f.msg);
		w.view_home = f.home;
		w.img_uid = f.uid;
		w.img_gid = f.gid;
		log_info("ckpt: app %u found in kdfs: %s", w.appid, w.path);
		if (p->has_q && p->q.copy_only) {
			ckptsvc_answer(c, p->o, 0, w.path, 0); /* every node reads it there: nothing to copy */
		} else if (f.sysv_r == 0 && c->s->ipc) {
			uint8_t *saved = malloc(f.sysv_len ? f.sysv_len : 1);
			if (!saved)
				r = -ENOMEM;
			else {
				memcpy(saved, buf + sizeof(f), f.sysv_len);
				r = ckptsvc_sysv_restore_saved(c, p->o, &w, saved, f.sysv_len, f.sysv_n);
			}
		} else if (f.sysv_r < 0 && f.sysv_r != -ENOENT) {
			ckptsvc_answer(c, p->o, f.sysv_r, f.sysv_err, w.appid);
		} else if (w.sysv_only) {
			ckptsvc_answer(c, p->o, f.sysv_r == 0 ? -ENOTSUP : 0, f.sysv_r == 0 ? strerror(ENOTSUP) : "",
				       w.appid);
		} else {
			r = ckptsvc_spawn(c, p->o, &w);
		}
		if (r < 0)
			ckptsvc_answer(c, p->o, r, strerror(-r), w.appid);
	}
	free(p);
}

int ckptsvc_restart_here(struct krg_ckptsvc *c, struct krg_origin o, const struct work *w,
			 const Krg__Ckptsvc__Restart *q, ckptsvc_missing_fn missing)
{
	struct probe *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->o = o;
	p->w = *w;
	p->w.path[0] = 0;
	p->missing = missing;
	if (q) {
		p->q = *q;
		p->q.base.n_unknown_fields = 0;
		p->q.base.unknown_fields = NULL;
		p->has_q = true;
	}
	int r = kio_start(c, probe_child, p, probe_done, p);
	if (r < 0)
		free(p);
	return r;
}

/* ---- periodic versions removed ---- */

struct kprune {
	uint32_t image_id, appid, keep, upto; /* ckptsvc_kdfs_prune */
};

/* The versions a restart of v reads: v and the parents it builds on. A
 * user's own image may name any parent: that only keeps more of the
 * user's versions, never removes one. */
static size_t chain_of(const char *app, uint32_t v, uint32_t *out, size_t n)
{
	size_t k = 0;
	while (v && k < n) {
		out[k++] = v;
		char dir[700], name[64];
		snprintf(dir, sizeof(dir), "%s/v%u", app, v);
		if (ckpt_image_parent(dir, name, sizeof(name)) < 0 || name[0] != 'v')
			break;
		v = (uint32_t)strtoul(name + 1, NULL, 10);
	}
	return k;
}

/* A version written for app's periodic checkpoints (its description). */
static bool periodic_version(int afd, const char *v, uint32_t appid)
{
	char path[64], buf[128], want[80];
	snprintf(path, sizeof(path), "%s/description", v);
	int fd = openat(afd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	snprintf(want, sizeof(want), "periodic checkpoint of app %u\n", appid);
	return n > 0 && (buf[n] = 0, !strcmp(buf, want));
}

/* Writes "REMOVED ERR". <image_id>/ is the user's: nothing under it is
 * followed (krg_rm_tree). */
static void prune_child(int fd, void *arg)
{
	struct kprune *k = arg;
	char path[600], out[64];
	unsigned removed = 0;
	int err = 0;
	snprintf(path, sizeof(path), "%s/%u", krg_ckpt_store_kdfs(), k->image_id);
	uint32_t chain[CKPT_MAX_CHAIN + 1];
	size_t nchain = k->keep ? chain_of(path, k->keep, chain, ARRAY_SIZE(chain)) : 0;
	int afd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = afd >= 0 ? fdopendir(afd) : NULL;
	if (!d) {
		err = errno == ENOENT ? 0 : -errno;
	} else {
		struct dirent *e;
		while ((e = readdir(d))) {
			char *end;
			if (e->d_name[0] != 'v' || !e->d_name[1])
				continue;
			unsigned long v = strtoul(e->d_name + 1, &end, 10);
			bool needed = false;
			for (size_t i = 0; i < nchain; i++)
				needed |= chain[i] == v;
			if (*end || needed || v > k->upto || !periodic_version(dirfd(d), e->d_name, k->appid))
				continue;
			int r = krg_rm_tree(dirfd(d), e->d_name, NULL);
			if (r == 0)
				removed++;
			else if (!err && r != -ENOENT)
				err = r;
		}
		closedir(d);
		rmdir(path); /* only if empty: the user's own versions stay */
	}
	int n = snprintf(out, sizeof(out), "%u %d", removed, err);
	(void)krg_write_all(fd, out, (size_t)n);
}

static void prune_done(void *data, const uint8_t *buf, size_t len)
{
	struct kprune *k = data;
	char text[64];
	unsigned removed = 0;
	int err = 0;
	snprintf(text, sizeof(text), "%.*s", (int)(len < sizeof(text) ? len : sizeof(text) - 1), buf ? (const char *)buf : "");
	if (sscanf(text, "%u %d", &removed, &err) != 2)
		log_warn("periodic checkpoints: removing versions of %s/%u: the helper died", krg_ckpt_store_kdfs(),
			 k->image_id);
	if (removed)
		log_info("periodic checkpoints: removed %u version(s) of %s/%u (%s)", removed, krg_ckpt_store_kdfs(),
			 k->image_id, k->keep ? "a newer checkpoint is recorded" : "superseded, stopped, or its application ended");
	if (err < 0)
		log_warn("periodic checkpoints: removing versions of %s/%u: %s", krg_ckpt_store_kdfs(), k->image_id,
			 strerror(-err));
	free(k);
}

void ckptsvc_kdfs_prune(struct krg_ckptsvc *c, uint32_t image_id, uint32_t appid, uint32_t keep, uint32_t upto)
{
	struct kprune *k = calloc(1, sizeof(*k));
	if (!k || !krg_ckpt_store_kdfs() || !image_id) {
		free(k);
		return;
	}
	*k = (struct kprune){ .image_id = image_id, .appid = appid, .keep = keep, .upto = upto };
	int r = kio_start(c, prune_child, k, prune_done, k);
	if (r < 0) {
		log_warn("periodic checkpoints: cannot remove versions of %s/%u: %s", krg_ckpt_store_kdfs(), image_id,
			 strerror(-r));
		free(k);
	}
}
