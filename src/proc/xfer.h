/* xfer.h — what checkpoint and migration send between krgd's, written
 * once: a request forwarded to the node that can answer it, and an image
 * directory sent from one krgd to another, both ends, for checkpoint's
 * restart on another node ("ckpt.recv" + "ckpt.file") and migration
 * ("mig.recv" + "mig.file"):
 * the source lists the directory and streams its files in pieces over the
 * bulk channel with a bound on the bytes in flight; the target keeps one
 * receipt per (source node, transfer id), writes each piece where it goes
 * and drops a receipt silent too long. A piece's message is each
 * service's own (their fields differ, docs/protocol.md): the service
 * encodes and decodes it, this module does the rest. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include <protobuf-c/protobuf-c.h>
#include "net/net.h"

struct krg_api_call;

/* ---- answers and forwarding ---- */

/* Who waits for an answer: a local API call, or a peer's request. */
struct krg_origin {
	struct krg_api_call *call;
	uint32_t from;
	uint64_t req_id;
	/* Or krgd itself waits for the answer (a service's own work, e.g.
	 * periodic checkpoints): called with what the others would get. */
	void (*cb)(void *data, int status, const char *text, const void *result, size_t len);
	void *cb_data;
};

/* The answer, result being the service's packed Result (which carries
 * status and text): an API call gets status, and text when it failed or
 * the Result when it did not; a peer gets request status 0 and the
 * Result. Nobody waits (no call, no request): nothing. */
void krg_origin_answer(struct krg_net *net, struct krg_origin o, int status, const char *text, const void *result,
		       size_t len);

/* What a failed request to a node (an image's receiver) means, for a
 * message "node N: ...": no answer in time, unreachable, or the errno's. */
const char *krg_request_why(int status);

/* A service's Result (sint32 status = 1, string text = 2, then its own
 * fields) in body: its status (0 or -errno) and text; -EBADMSG if it is
 * not one, or its status is not an errno. */
int krg_result_read(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len, char *text,
		    size_t textlen);

/* A request forwarded to the node that can answer it: its Result goes
 * back to the origin as it came. The service names its Result type and
 * says what a failure to get one means (the request's status:
 * unreachable, timed out...), answering the origin itself. */
struct krg_fwd_ops {
	const ProtobufCMessageDescriptor *result;
	/* bad_answer: a reply that is not a Result, else the request
	 * failed with status. */
	void (*failed)(struct krg_origin o, int status, bool bad_answer, uint32_t id, uint32_t node);
};
/* 0, or -errno (the origin not answered). */
int krg_forward(struct krg_net *net, const struct krg_fwd_ops *ops, struct krg_origin o, uint32_t node, uint32_t id,
		const char *type, const void *body, size_t len, unsigned timeout_ms);

/* ---- source ---- */

struct krg_xfer_src {
	char dir[512];
	char **names;        /* the files to send, sorted */
	size_t n, cur;       /* cur: the one being sent */
	int fd;              /* cur's, -1 between files */
	uint64_t off, size;  /* next byte of cur to send, its size */
	size_t inflight;     /* bytes handed to the bulk channel, not yet written */
	size_t pieces;       /* pieces handed to it, not yet written */
};

/* List dir's regular files that keep() accepts (NULL: all), at most max,
 * sorted by name. s is zeroed with fd -1 before the first call; inflight
 * and pieces are kept (pieces may be sent before the listing). 0, -ENOENT
 * (none) or -errno. krg_xfer_src_free after, whatever it returned. */
int krg_xfer_src_open(struct krg_xfer_src *s, const char *dir, bool (*keep)(const char *name), size_t max);
void krg_xfer_src_free(struct krg_xfer_src *s);
/* The current file open and its size known (once per file). 0 or -errno,
 * err one line. */
int krg_xfer_src_file(struct krg_xfer_src *s, char *err, size_t errlen);
/* The bytes of the current file's next piece: at most chunk. */
size_t krg_xfer_src_want(const struct krg_xfer_src *s, size_t chunk);
/* Exactly want bytes at off of fd into buf: 0, -EIO (the file is shorter)
 * or -errno. */
int krg_xfer_read(int fd, uint64_t off, uint8_t *buf, size_t want);
/* A piece of len bytes to the bulk channel, counted in flight until
 * done_cb (which calls krg_xfer_src_piece_done). 0 or -errno (nothing
 * counted, body not taken). */
int krg_xfer_src_send(struct krg_xfer_src *s, struct krg_net *net, uint32_t to, const char *type, const void *body,
		      size_t len, krg_net_done_cb done_cb, void *data);
void krg_xfer_src_piece_done(struct krg_xfer_src *s, size_t len);
/* want more bytes of the current file are on their way; last: that was
 * its end (closed: the next file). True once every file is sent. */
bool krg_xfer_src_sent(struct krg_xfer_src *s, size_t want, bool last);

/* ---- target ---- */

struct krg_xfer_rxset;

/* A receipt: the first member of the service's own, which it allocates
 * zeroed, adds, and frees in the set's closed callback. */
struct krg_xfer_rx {
	struct krg_xfer_rx *next;
	struct krg_xfer_rxset *set;
	uint32_t from;
	uint64_t xfer, total;   /* total: bytes of the pieces received */
	bool ended, failed, has_req;
	uint64_t req_id;        /* the source's request, has_req */
	uv_timer_t timer;
};

struct krg_xfer_rxset {
	struct krg_xfer_rx *head;
	uv_loop_t *loop;
	unsigned idle_ms;                       /* no piece that long: idle() */
	void (*idle)(struct krg_xfer_rx *x);
	void (*closed)(struct krg_xfer_rx *x);  /* after krg_xfer_rx_drop: free it */
};

struct krg_xfer_rx *krg_xfer_rx_find(struct krg_xfer_rxset *set, uint32_t from, uint64_t xfer);
/* Into the set, its idle timer started. */
void krg_xfer_rx_add(struct krg_xfer_rxset *set, struct krg_xfer_rx *x, uint32_t from, uint64_t xfer);
/* A piece came: the idle timer starts again. */
void krg_xfer_rx_touch(struct krg_xfer_rx *x);
/* Out of the set; the closed callback follows. */
void krg_xfer_rx_drop(struct krg_xfer_rx *x);
/* A name a piece may have: no '/', not "." or "..", not empty. */
bool krg_xfer_name_ok(const char *name);
/* One piece written: len bytes at off of dir/name (made 0600, owned by
 * uid:gid unless uid is -1), counted in x->total. truncate: it is the
 * file's last piece, the file ends there. -EINVAL (a bad name), -EFBIG
 * (the transfer or the offset over max) or -errno. */
int krg_xfer_rx_write(struct krg_xfer_rx *x, const char *dir, const char *name, uint64_t off, const void *data,
		      size_t len, bool truncate, uid_t uid, gid_t gid, uint64_t max);
