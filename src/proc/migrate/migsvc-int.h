/* migsvc-int.h — what the parts of krgd's migration service share
 * (mig_service.c and the mig_*.c beside it; docs/migration.md). One
 * krgd role per file: home (mig_home.c), host and target (mig_target.c),
 * source (mig_move.c, mig_route.c), the local frame connections
 * (mig_conn.c, mig_frames.c), the peers' messages (mig_io.c) and
 * progress (mig_status.c). */
#pragma once
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>
#include "api/server.h"
#include "lib/fault.h"
#include "cluster/cluster.h"
#include "lib/fileio.h"
#include "lib/metrics.h"
#include "proc/pidrange.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"
#include "fsview/fsview.h"
#include "proc/migrate.h"
#include "proc/table.h"
#include "proc/schedsvc.h"
#include "proc/migrate/filemsg.h"
#include "proc/migrate/mig_msg.h"
#include "proc/migrate/mig-int.h"
#include "ipc/intercept_svc.h"
#include "proc/migrate/worker.h"
#include "proc/procid.h"
#include "proc/xfer.h"
#include "lib/procfs.h"
#include "proto/migrate.pb-c.h"

#define MOVE_TIMEOUT_MS (30u * 60 * 1000)
#define XFER_CHUNK (2u << 20)     /* under krgd's mmap threshold: heap buffers, no page faults per piece */
#define XFER_INFLIGHT (12u << 20) /* and under its trim threshold */
#define XFER_IDLE_MS (60u * 1000)
#define XFER_MAX (64ull << 30)
#define IMG_OUT "/run/krg/mig-out"
#define IMG_IN "/run/krg/mig-in"

struct cq {
	struct cq *next;
	size_t len;
	uint8_t buf[];
};

enum conn_kind { CK_PENDING, CK_DEPUTY, CK_HOLDER, CK_WORKER };
/* A deputy sends its hello right after connecting. */
#define MIG_HELLO_MS 5000
/* Workers (freeze and dump) run this much nicer than krgd. */
#define MIG_WORKER_NICE 5

struct conn {
	int fd;
	uv_poll_t poll;
	enum conn_kind kind;
	void *owner;
	uv_timer_t *hello_deadline;  /* CK_PENDING: closes it if no hello comes */
	struct cq *qh, *qt;
	bool dead;
	int events;
};

struct backq {
	struct backq *next;
	uint32_t fd;
	size_t len;
	uint8_t data[];
};

struct dep {
	struct dep *next;
	uint32_t id, node;
	pid_t pid;
	int pidfd;
	uv_poll_t pp;
	bool pp_on;
	uint8_t token[16];
	struct conn *c;
	struct cq *ph, *pt;     /* frames for the deputy before it connected */
	struct backq *bh, *bt;  /* input returned by the node it leaves, for the next one */
	uint64_t sig_back;      /* signals the node it left bounced (bit s-1): for the next one, at mig.where */
	bool exit_sent;
	bool handing;           /* back home, being restored into (inplace.c): frames for it wait in ph */
	/* Its children here that ended (reaped by the deputy): their wait
	 * statuses, sent to every node it runs on (its ghosts there end so). */
	struct { pid_t pid; int status; } *ended;
	size_t nended;
};

/* A child a migrant left at home, and its ghost where the migrant runs. */
struct kid {
	pid_t home;      /* its pid at home */
	pid_t as;        /* the pid the migrant knows it by */
	pid_t ghost;     /* the ghost's pid here (a holder's); 0 if none */
	char comm[16];
	bool has_ids;    /* its ids at home are known: */
	uid_t uid, suid; /* real and saved uid */
	gid_t gid;       /* real gid */
	int stop_sig;    /* stopped by this signal, the stop not reaped by the migrant; 0: none */
};

struct move;
struct hold {
	struct hold *next;
	uint32_t id, home;
	pid_t pid, wpid;
	struct conn *c;
	bool restored, leaving, exited;
	bool drained;              /* its copy here is gone or going (it moved on): signals go back home */
	bool moved_on;             /* its migration from here committed: the copy's end is not the process's */
	bool has_req;
	struct krg_origin o;
	uint32_t notify_fd;
	struct move *mv;
	size_t np;                 /* its proxied fds (FIFOs here), passed on when it moves again */
	int num[MIG_MAX_PROXIES];
	bool reads[MIG_MAX_PROXIES];
	bool tty[MIG_MAX_PROXIES];
	int stype[MIG_MAX_PROXIES];
	struct mig_sockaddrs sa[MIG_MAX_PROXIES]; /* a socket's addresses at home, served to the migrant */
	unsigned long ino[MIG_MAX_PROXIES];       /* a socket: the inode of the migrant's end (MF_SOCKINO) */
	size_t nkids;              /* children left at home: ghosts here */
	struct kid kids[MIG_MAX_KIDS];
	pid_t ppid;                /* its parent's pid at home (its getppid() there): passed on when it moves again */
	bool inplace;              /* back home: its holder restores it into its deputy (inplace.c) */
	bool orphan;               /* its home was declared down: this node is its home now (orphan.c) */
	int out_fd;                /* an orphan's output file (orphan.c) */
	uid_t orphan_uid;          /* and its owner, taken at adoption (it may be gone at its end) */
	gid_t orphan_gid;
};

/* Where a move stands. It only goes forward, and only mig_move_set_phase
 * changes it; failing or being answered is not a
 * phase (mig_move_fail, answered), nor is its memory going (freed). */
enum move_phase {
	MOVE_COPYING,    /* the worker pre-copies, freezes and dumps the process */
	MOVE_SENDING,    /* dumped (MF_DUMPED): the image goes to the target */
	MOVE_RESTORING,  /* every piece went out: the target restores it */
	MOVE_COMMITTED,  /* it runs on the target: the worker makes the original
			  * the deputy or kills it (MF_COMMIT) */
};

struct move {
	struct move *next;
	uint32_t id, to;
	pid_t pid, wpid;
	uid_t uid;
	gid_t gid;
	struct conn *w;
	struct krg_origin o;
	enum move_phase phase;    /* changed by mig_move_set_phase only */
	bool answered, verdict_sent;
	krg_sched_move_done_fn done;  /* the scheduler's, told the cost once answered; may be NULL */
	void *done_data;          /* borrowed, the caller's */
	char dir[256];
	char spec[2048];
	/* Its sockets' addresses at home, by fd number (MF_SOCKADDR). */
	size_t nsa;
	int sa_num[MIG_MAX_PROXIES];
	struct mig_sockaddrs sa[MIG_MAX_PROXIES];
	uint64_t xfer;
	struct hold *h;          /* a migrant here (else the original, at home); NULL once its holder is gone */
	bool here;               /* it was a migrant here when the move began */
	uint64_t carried;        /* signals pending on it before the dump (they went with the image) */
	uint32_t notify_fd;
	/* image transfer: the files of dir, and the pre-copied pieces */
	struct krg_xfer_src src;
	bool tx_failed, req_done;
	uint32_t new_pid;
	uint64_t t_start, t_dumped, t_running, bytes;
	bool counted;            /* in the metrics already (lib/metrics.h) */
	/* The pages file, sent while the worker writes it (early). */
	uv_timer_t early_timer;
	int early_fd;
	ino_t early_ino;
	char early_name[64];
	uint64_t early_off;     /* sent: [64, early_off) (the frame head comes last) */
	bool early_bad;
	size_t early_pieces;
	char *skip_name;        /* in the final pass: that range is not sent again */
	/* Pre-copy ranges to read from the process into pieces (MF_COPY:
	 * the worker leaves them as holes in its file). */
	struct mig_copy *cq;
	size_t cq_n, cq_cap, cq_head;
	bool direct;            /* the pages file's pre-copied part comes from cq, not the file */
	int pidfd;              /* the process: what copy_one reads is its memory, not a pid's reuser's */
	unsigned restore_ms;
	char stats[200];
	uint64_t where_signals;  /* from the holder's MF_DRAINED, for mig.where */
	bool where_held;         /* tests: mig.where waits (mig_test_where_held) */
	/* Pre-copy: the worker waits until the pages file went out up to pre_want
	 * and the target has it (mig.got: got bytes of those sent), so that
	 * nothing pre-copied is still on the link when it freezes. */
	uint64_t pre_want;
	bool pre_waiting;
	uint64_t got;
	uint64_t t_sent;        /* when the pieces of this round were all written (0: not yet) */
	unsigned pre_rounds;
	uint64_t t_frozen;      /* MF_FROZEN: the process stopped (0: not yet) */
	bool freed;             /* mig_move_free done, memory goes at the timer's close */
};

struct rx {
	struct krg_xfer_rx x;  /* first: from, xfer, total, ended, failed, has_req, req_id */
	char dir[256];
	Krg__Mig__Recv *recv;
};

struct krg_migsvc {
	struct krg_services *s;
	uint32_t self;
	pid_t krgd;
	bool running;
	char deputy[512], ghost[512], sock_path[256];
	int lfd;
	uv_poll_t lpoll;
	bool lpoll_on;
	struct dep *deps;
	struct hold *holds;
	struct move *moves;
	struct krg_xfer_rxset rxs;
	uint64_t counter;
	unsigned npending;      /* deputy connections before their hello */
	/* Moves waiting for a worker slot (at most max_workers run at once:
	 * each freezes and dumps a process, and a node that forked fifty of
	 * them starved its own krgd). Oldest first. */
	struct queued_move *queue, **queue_tail;
	unsigned nqueued;
};

struct queued_move {
	struct queued_move *next;
	struct krg_origin o;
	uint32_t id, to, notify_fd;
	uid_t uid;
	uint64_t since;
	bool evicting;          /* mig_move_local's */
};


extern struct krg_migsvc the_mig;

/* ---- shared between the parts ---- */

void mig_answer(struct krg_origin o, int status, const char *text, uint32_t node, uint32_t pid, uint32_t id);
void mig_bulk_done(int status, void *data);
void mig_conn_close(struct conn *c);
void mig_conn_flush(struct conn *c);
struct conn *mig_conn_new(int fd, enum conn_kind kind, void *owner);
void mig_conn_send(struct conn *c, uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len);
struct dep *mig_dep_by_id(uint32_t id);
void mig_dep_died(uv_poll_t *h, int status, int events);
void mig_dep_exit(struct dep *d, int status);
void mig_dep_free(struct dep *d);
void mig_dep_kid_ended(struct dep *d, pid_t pid, int status);
void mig_dep_send_ended(struct dep *d);
/* The frames that waited for the deputy (before its hello, or while it
 * was handed over) go to it now. */
void mig_dep_flush_pending(struct dep *d);
void mig_dep_to(struct dep *d, uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len);
void mig_early_pump(struct move *v);
void mig_early_tick(uv_timer_t *t);
struct cq *mig_frame(uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len);
void mig_hello(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len);
void mig_hello_deadline_stop(struct conn *c);
struct hold *mig_hold_by_id(uint32_t id);
void mig_hold_free(struct hold *h);
int mig_orphan_adopt(struct hold *h, uint32_t home);
void mig_orphan_output(struct hold *h, const struct mig_hdr *hd, const uint8_t *data, size_t len);
void mig_orphan_exit(struct hold *h, int status);
void mig_orphan_close(struct hold *h);
pid_t mig_orphan_pid(void *data, uint32_t id);
void mig_move_answer(struct move *v, int status, const char *text);
void mig_move_dumped(struct move *v, const char *spec);
void mig_move_fail(struct move *v, int status, const char *text);
void mig_move_free(struct move *v);
/* evicting: the scheduler's eviction (krg_sched_mover_fn), which may move a
 * CHECKPOINTABLE process without CAN_MIGRATE. */
int mig_move_local(struct krg_origin o, uint32_t id, uint32_t to, uid_t uid, uint32_t notify_fd, bool evicting,
		   char *err, size_t errlen);
void mig_move_maybe_free(struct move *v);
void mig_on_accept(uv_poll_t *h, int status, int events);
void mig_on_api_move(struct krg_api_call *call, void *data);
void mig_on_api_status(struct krg_api_call *call, void *data);
void mig_on_conn_gone(struct conn *c);
void mig_on_file(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void mig_on_frame(struct conn *c, const struct mig_hdr *h, const uint8_t *data, size_t len);
void mig_on_got(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void mig_on_net_io(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void mig_on_net_move(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void mig_on_net_status(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void mig_on_recv(struct krg_net *net, uint32_t from, const struct krg_msg *msg, uint64_t req_id, void *data);
void mig_pre_check(struct move *v);
void mig_route(struct krg_origin o, uint32_t id, uint32_t to, uid_t uid, uint32_t notify_fd);
void mig_rx_free(struct rx *x, bool rm);
/* The receipts' idle and closed callbacks (xfer.h). */
void mig_rx_idle(struct krg_xfer_rx *x);
void mig_rx_closed(struct krg_xfer_rx *x);
void mig_send_io(uint32_t to, const char *type, const Krg__Mig__Io *io, bool bulk);
/* Proxied input for fd of migrant id (back: returned home, not taken). */
void mig_send_data(uint32_t to, uint32_t id, uint32_t fd, ProtobufCBinaryData data, bool back);
void mig_send_simple(uint32_t to, const char *type, uint32_t id, int sig, bool has_status, int status,
			uint32_t node);
void mig_send_where(struct move *v);
void mig_start_queued(void);
bool mig_test_where_held(uint32_t id);
void mig_where_tick(uv_timer_t *t);
const char *mig_why(int r, char *buf, size_t len, uint32_t id);
unsigned mig_workers_running(void);
/* The scheduler's mover (krg_sched_set_mover): svc is the service. */
int mig_sched_move(void *svc, uint32_t id, uint32_t to, bool evicting, krg_sched_move_done_fn done, void *data,
		   char *err, size_t errlen);
/* What process pid is to the process table (its kind hook): a migrant
 * here, krgd's machinery, or an ordinary process. data: the service. */
enum krg_proc_kind mig_proc_kind(void *data, pid_t pid, uint32_t *id, uint32_t *home);
/* getsockname/getpeername of a migrant here (ipc/intercept_svc.h's
 * sock hook): home's address if fd of thread tid is a forwarded socket. */
int mig_sock_hook(void *ctx, pid_t tid, int fd, enum krg_intercept_sock_what what, uint8_t *addr, size_t cap,
		  size_t *got);
/* A forwarded socket's answers at home (sockans.c) into its Proxy
 * (bytes borrowed from sa, groups written to gbuf, MIG_SA_MAX bytes),
 * and back. */
void mig_sa_to_proxy(Krg__Mig__Proxy *x, const struct mig_sockaddrs *sa, uint32_t *gbuf);
void mig_sa_from_proxy(struct mig_sockaddrs *sa, const Krg__Mig__Proxy *x);
/* The one place a move's phase changes (enum move_phase): forward only. */
void mig_move_set_phase(struct move *v, enum move_phase to);
/* "copying", "sending", "restoring", "committed" (mig.status). */
const char *mig_move_phase_name(enum move_phase p);
