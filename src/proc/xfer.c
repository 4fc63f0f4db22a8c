/* xfer.c — answers, forwarding and both ends of an image directory's
 * transfer (xfer.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "api/server.h"
#include "proc/xfer.h"

/* ---- answers and forwarding ---- */

const char *krg_request_why(int status)
{
	if (status == -ETIMEDOUT)
		return "no answer in time";
	if (status == -ECONNRESET || status == -EHOSTUNREACH)
		return "unreachable";
	return strerror(-status);
}

void krg_origin_answer(struct krg_net *net, struct krg_origin o, int status, const char *text, const void *result,
		       size_t len)
{
	if (o.cb)
		o.cb(o.cb_data, status, text ? text : "", result, len);
	else if (o.call)
		krg_api_reply(o.call, status, status ? text : NULL, status ? NULL : result, status ? 0 : len);
	else if (o.req_id)
		krg_net_reply(net, o.from, o.req_id, 0, result, len);
}

int krg_result_read(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len, char *text,
		    size_t textlen)
{
	const ProtobufCFieldDescriptor *fs = protobuf_c_message_descriptor_get_field_by_name(desc, "status");
	const ProtobufCFieldDescriptor *ft = protobuf_c_message_descriptor_get_field_by_name(desc, "text");
	if (!fs || !ft || fs->type != PROTOBUF_C_TYPE_SINT32 || ft->type != PROTOBUF_C_TYPE_STRING)
		return -EBADMSG;
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, body);
	if (!m)
		return -EBADMSG;
	int32_t st = *(const int32_t *)(const void *)((const char *)m + fs->offset);
	const char *t = *(char *const *)(const void *)((const char *)m + ft->offset);
	int r = st > 0 || st < -4095 ? -EBADMSG : st;
	if (r != -EBADMSG)
		snprintf(text, textlen, "%s", t ? t : "");
	protobuf_c_message_free_unpacked(m, NULL);
	return r;
}

struct fwd {
	struct krg_net *net;
	const struct krg_fwd_ops *ops;
	struct krg_origin o;
	uint32_t node, id;
};

static void fwd_reply(struct krg_net *net, int status, const struct krg_msg *reply, void *data)
{
	struct fwd *f = data;
	char text[1024];
	if (status) {
		f->ops->failed(f->o, status, false, f->id, f->node);
	} else if ((status = krg_result_read(f->ops->result, reply->body, reply->len, text, sizeof(text))) == -EBADMSG) {
		f->ops->failed(f->o, -EBADMSG, true, f->id, f->node);
	} else {
		krg_origin_answer(f->net, f->o, status, text, reply->body, reply->len);
	}
	free(f);
}

int krg_forward(struct krg_net *net, const struct krg_fwd_ops *ops, struct krg_origin o, uint32_t node, uint32_t id,
		const char *type, const void *body, size_t len, unsigned timeout_ms)
{
	struct fwd *f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	*f = (struct fwd){ .net = net, .ops = ops, .o = o, .node = node, .id = id };
	int r = krg_net_request(net, node, type, body, len, timeout_ms, fwd_reply, f);
	if (r < 0)
		free(f);
	return r;
}

/* ---- source ---- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int krg_xfer_src_open(struct krg_xfer_src *s, const char *dir, bool (*keep)(const char *name), size_t max)
{
	/* Not inflight and pieces: a migration sends pieces before its dump
	 * is listed. */
	krg_xfer_src_free(s);
	s->cur = 0;
	s->off = s->size = 0;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *e;
	while ((e = readdir(d)) && s->n < max) {
		if (e->d_type != DT_REG || (keep && !keep(e->d_name)))
			continue;
		char **nn = realloc(s->names, (s->n + 1) * sizeof(*nn));
		if (!nn)
			break;
		s->names = nn;
		if (!(nn[s->n] = strdup(e->d_name)))
			break;
		s->n++;
	}
	closedir(d);
	if (!s->n)
		return -ENOENT;
	qsort(s->names, s->n, sizeof(*s->names), cmp_names);
	return 0;
}

void krg_xfer_src_free(struct krg_xfer_src *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	s->names = NULL;
	s->n = 0;
}

int krg_xfer_src_file(struct krg_xfer_src *s, char *err, size_t errlen)
{
	if (s->fd >= 0)
		return 0;
	char path[1100];
	snprintf(path, sizeof(path), "%s/%s", s->dir, s->names[s->cur]);
	s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (s->fd < 0 || fstat(s->fd, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	s->off = 0;
	s->size = (uint64_t)st.st_size;
	return 0;
}

size_t krg_xfer_src_want(const struct krg_xfer_src *s, size_t chunk)
{
	return s->size - s->off > chunk ? chunk : (size_t)(s->size - s->off);
}

int krg_xfer_read(int fd, uint64_t off, uint8_t *buf, size_t want)
{
	size_t got = 0;
	while (got < want) {
		ssize_t k = pread(fd, buf + got, want - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EIO;
		got += (size_t)k;
	}
	return 0;
}

int krg_xfer_src_send(struct krg_xfer_src *s, struct krg_net *net, uint32_t to, const char *type, const void *body,
		      size_t len, krg_net_done_cb done_cb, void *data)
{
	s->inflight += len;
	s->pieces++;
	int r = krg_net_send_bulk(net, to, type, body, len, done_cb, data);
	if (r < 0)
		krg_xfer_src_piece_done(s, len);
	return r;
}

void krg_xfer_src_piece_done(struct krg_xfer_src *s, size_t len)
{
	s->inflight -= len;
	s->pieces--;
}

bool krg_xfer_src_sent(struct krg_xfer_src *s, size_t want, bool last)
{
	s->off += want;
	if (last) {
		close(s->fd);
		s->fd = -1;
		s->cur++;
	}
	return s->cur == s->n;
}

/* ---- target ---- */

struct krg_xfer_rx *krg_xfer_rx_find(struct krg_xfer_rxset *set, uint32_t from, uint64_t xfer)
{
	for (struct krg_xfer_rx *x = set->head; x; x = x->next)
		if (x->from == from && x->xfer == xfer)
			return x;
	return NULL;
}

static void rx_idle(uv_timer_t *t)
{
	struct krg_xfer_rx *x = t->data;
	x->set->idle(x);
}

void krg_xfer_rx_add(struct krg_xfer_rxset *set, struct krg_xfer_rx *x, uint32_t from, uint64_t xfer)
{
	x->set = set;
	x->from = from;
	x->xfer = xfer;
	uv_timer_init(set->loop, &x->timer);
	x->timer.data = x;
	x->next = set->head;
	set->head = x;
	uv_timer_start(&x->timer, rx_idle, set->idle_ms, 0);
}

void krg_xfer_rx_touch(struct krg_xfer_rx *x)
{
	uv_timer_start(&x->timer, rx_idle, x->set->idle_ms, 0);
}

static void rx_closed(uv_handle_t *h)
{
	struct krg_xfer_rx *x = h->data;
	x->set->closed(x);
}

void krg_xfer_rx_drop(struct krg_xfer_rx *x)
{
	for (struct krg_xfer_rx **p = &x->set->head; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			break;
		}
	uv_timer_stop(&x->timer);
	uv_close((uv_handle_t *)&x->timer, rx_closed);
}

bool krg_xfer_name_ok(const char *n)
{
	return n[0] && strcmp(n, ".") && strcmp(n, "..") && !strchr(n, '/');
}

int krg_xfer_rx_write(struct krg_xfer_rx *x, const char *dir, const char *name, uint64_t off, const void *data,
		      size_t len, bool truncate, uid_t uid, gid_t gid, uint64_t max)
{
	if (!krg_xfer_name_ok(name))
		return -EINVAL;
	x->total += len;
	if (x->total > max || off > max)
		return -EFBIG;
	char path[1100];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int r = uid != (uid_t)-1 && fchown(fd, uid, gid) < 0 ? -errno : 0;
	size_t done = 0;
	while (r == 0 && done < len) {
		ssize_t w = pwrite(fd, (const uint8_t *)data + done, len - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			r = -errno;
		else if (w == 0)
			r = -EIO;
		else
			done += (size_t)w;
	}
	if (r == 0 && truncate && ftruncate(fd, (off_t)(off + len)) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}
