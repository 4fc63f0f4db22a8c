/* mig-int.h — internals of live migration (src/proc/migrate/, docs/migration.md).
 *
 * Processes involved, per migrated process:
 *   deputy   at home: the original process itself (same pid, parent, real
 *            fds), exec'd into krg-deputy (deputy.c). It forwards the
 *            signals it gets, pumps the fds that could not move, and dies
 *            with the migrant's exit status.
 *   holder   on the node running the migrant: the krgd worker that
 *            restored it and stays its parent (holder.c): reaps it, relays
 *            signals, pumps the FIFOs standing in for the proxied fds.
 *   ghost    on the node running the migrant, per child it left at home:
 *            its child there, with the home child's pid (ghost.c); signals
 *            the migrant sends it go to the real child, and it ends as the
 *            real child did, so the migrant's wait() gets that status.
 *   worker   on the source, for one migration (worker.c): freezes (SIGSTOP),
 *            dumps, sets up the FIFOs, then turns the process into the
 *            deputy (injected execve), kills it (it was a migrant), or
 *            thaws it (the migration failed).
 * Each talks to its krgd over a SOCK_SEQPACKET unix socket with the local
 * frames below (never on the network: krgd relays them as protobuf
 * "mig.*" messages, src/proto/migrate.proto). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Data per frame: at most MIG_CHUNK (what every receiver takes); a
 * sender whose socket to krgd takes frames that large (mig_sock_bufs)
 * sends them, else MIG_CHUNK_SMALL. Fewer, larger frames: fewer
 * wakeups, syscalls and messages per byte on a path of five hops. */
#define MIG_CHUNK (256u << 10)
#define MIG_CHUNK_SMALL (60u << 10)
#define MIG_WINDOW (4u << 20)        /* unacknowledged bytes per proxied fd */
#define MIG_ACK_BATCH (512u << 10)
#define MIG_SOCK_BUF (4 << 20)       /* send buffer of the frame sockets (capped by wmem_max unless root) */
#define MIG_MAX_PROXIES 64
/* A proxied socket is two streams: its number N carries what home's end
 * receives (home -> migrant), N | MIG_REV what the migrant sends. */
#define MIG_REV (1 << 24)
#define MIG_GOT_WAIT_MS 300  /* pre-copy: longest wait for the target's mig.got once a round is written */
#define MIG_FIFO_DIR "/run/krg/mig"  /* FIFOs standing in for proxied fds: MIG_FIFO_DIR/<id>/fd<N> */

enum mig_frame_type {
	MF_HELLO = 1,     /* deputy -> krgd: data = token (16 bytes), arg = id */
	MF_DATA,          /* both ways: fd, data (arg 1: a socket's message goes on in the next frame) */
	MF_EOF,           /* both ways: fd. From the reading end: end of the data (arg 1: a socket's peer shut
			     its sending side but keeps it open, 0: closed). From the writing end (the
			     stream's reader is gone: EPIPE): its reading end closes too */
	MF_ACK,           /* both ways: fd, arg = bytes written */
	MF_SIG,           /* deputy -> krgd, krgd -> holder: arg = signal */
	MF_EXIT,          /* holder -> krgd, krgd -> deputy: arg = wait status */
	MF_GO,            /* krgd -> holder: start sending the migrant's output */
	MF_LEAVE,         /* krgd -> holder: the migrant moves on: drain, kill it quietly (arg: signals carried by its image) */
	MF_DRAINED,       /* holder -> krgd: after the last output of a leaving migrant (arg: signals that came after) */
	MF_RESTORED,      /* holder -> krgd: arg = the migrant's pid */
	MF_ERR,           /* worker/holder -> krgd: data = one line */
	MF_DUMPED,        /* worker -> krgd: data = proxies "N:M:r|w ..." */
	MF_COMMIT,        /* krgd -> worker: arg 1 = become the deputy, 0 = kill it */
	MF_ABORT,         /* krgd -> worker: thaw it */
	MF_DONE,          /* worker -> krgd */
	MF_NOTIFY,        /* krgd -> holder: arg = the migrant's fd to write "0\n" to (krg_migrate_self) */
	MF_WINSZ,         /* deputy -> krgd -> holder: arg = rows << 16 | cols of the home terminal */
	MF_BACK,          /* holder -> krgd: input for the migrant it did not get here (fd, data): home resends it */
	/* Children left at home (ghost.c): fd = the child's pid at home. */
	MF_GHOST,         /* holder -> krgd: arg = the pid of the ghost made here for child fd */
	MF_KID_SIG,       /* ghost -> holder (fd 0) -> krgd -> home -> deputy: arg = a signal the migrant sent it */
	MF_KID_EXIT,      /* deputy -> krgd -> host -> holder -> ghost (fd 0): arg = the child's wait status */
	/* Pre-copy (worker.c): the memory goes out while the process runs. */
	MF_PRECOPY,       /* worker -> krgd: round fd done, pages file at arg bytes: answer MF_SENT once it went out;
			     fd 0: no pre-copy, data = why (logged) */
	MF_SENT,          /* krgd -> worker: the pages file went out up to arg (less its last partial piece) */
	MF_FROZEN,        /* worker -> krgd: the process is frozen from now (the "frozen" time starts) */
	/* Pre-copied pages are read by krgd straight from the process into
	 * the messages it sends (no copy in a file here first). */
	MF_COPY,          /* worker -> krgd: data = struct mig_copy: copy that range, in order */
	MF_COPIED,        /* krgd -> worker: arg = address, data = u64 payload offset, u64 sum per page, u8 ok per page */
	/* Back home in place (docs/migration.md "Back home"): the migrant is
	 * restored into its deputy, which keeps the pid and the parent. */
	MF_PAUSE,         /* krgd -> deputy: stop reading the real fds (its input would have nowhere to go) */
	MF_RESUME,        /* holder -> krgd -> deputy: go on as a deputy (the process is restored beside it) */
	MF_BECOME,        /* holder -> krgd -> deputy: write out what is queued, answer MF_READY, then wait;
			     data = "NUM:r|w:SOCKTYPE ..." the migrant's fds standing for one at home */
	MF_READY,         /* deputy -> krgd -> holder: data = "NUM:FD ..." its real fds, by the migrant's numbers */
	MF_INPLACE,       /* holder -> krgd: restored into the deputy (arg: its pid): forget both */
	MF_SHELL,         /* krgd -> holder (with an fd): a sibling's holder is at its end (adopt.c) */
	MF_NOTE,          /* deputy/holder -> krgd: fd = the migrant's fd, arg = fds passed over it (-1: many): refused,
			     the forwarded socket shut (pump.c); krgd logs it */
	/* A socket's addresses at home, served to the migrant (docs/migration.md, "Forwarded fds"). */
	MF_SOCKADDR,      /* worker -> krgd, before MF_DUMPED: fd = the socket's number, arg = the slot
			     (enum mig_sa_slot) | errno << 3 if it failed; data = the answer */
	MF_SOCKINO,       /* holder -> krgd: fd = the socket's number, arg = the inode of the migrant's end of it */
};

/* What a forwarded socket answered at home when it was dumped, served
 * to the migrant by its krgd (docs/migration.md, "Forwarded fds"): by
 * slot, known (bit 1 << slot) with len >= 0 bytes of a or len < 0
 * -errno; not known, the migrant's call is not served. The addresses are
 * served as they are; for the peer's credentials "unknown" is refused,
 * never left to the kernel (it would answer the holder's, root). The
 * credential slots hold this node's structs (struct ucred, gid_t[]):
 * they go on the wire field by field (Proxy.peer_*). */
#define MIG_ADDR_MAX 128
#define MIG_SA_MAX 256       /* per slot: a security label or 64 groups */
enum mig_sa_slot {
	MIG_SA_NAME,      /* getsockname */
	MIG_SA_PEER,      /* getpeername */
	MIG_SA_CRED,      /* SO_PEERCRED: struct ucred, what the kernel vouched for at connect */
	MIG_SA_SEC,       /* SO_PEERSEC: the peer's security label */
	MIG_SA_GROUPS,    /* SO_PEERGROUPS: gid_t[] */
	MIG_SA_N
};
struct mig_sockaddrs {
	uint8_t known;
	int16_t len[MIG_SA_N];
	uint8_t a[MIG_SA_N][MIG_SA_MAX];
};

/* An MF_COPY: len bytes of the process at addr go to payload offset off
 * of its pages file (written-protected pages, handed over by a round). */
struct mig_copy {
	uint64_t addr, len, off;
};

#define MIG_MAX_KIDS 128             /* children left at home that get a ghost (the first ones) */

/* The deputy's child fd ended with wait status st: die the same way. */
_Noreturn void mig_die_like(int st);

/* The data of an MF_SIG for a queued signal (si_code < 0), between this
 * node's processes only: mig_siginfo_put/get fill and read it, field by field. */
#define MIG_SIGINFO_LEN 20
struct mig_siginfo {
	int32_t code;
	uint32_t pid, uid;
	uint64_t value;
};
void mig_siginfo_put(uint8_t out[MIG_SIGINFO_LEN], const struct mig_siginfo *s);
bool mig_siginfo_get(const uint8_t *data, size_t len, struct mig_siginfo *s);

struct mig_hdr {
	uint8_t type;
	uint8_t pad[3];
	int32_t fd;
	int64_t arg;
};

/* One whole frame (blocking socket). 0 or -errno. */
int mig_send(int sock, uint8_t type, int32_t fd, int64_t arg, const void *data, size_t len);

/* ---- pump (pump.c): proxied fds between a socket and local fds ---- */
struct mig_qbuf;
struct mig_pfd {
	int num;              /* the fd number in the migrant: the stream's name */
	int fd;               /* ours; -1 once closed */
	int nb;               /* deputy, a pipe: > 0, another open of it, non-blocking (ours alone), used for the
				 data: many frames per wakeup without blocking on a description shared at home */
	bool src;             /* we read fd and send DATA; else we write DATA into fd */
	bool eof_sent;
	bool eof_pending;     /* close once the queue is written */
	bool eof_half;        /* ... a socket: with shutdown(SHUT_WR) first */
	bool exact;           /* not a terminal: a reader gone at one end closes the other's (EPIPE goes through) */
	unsigned long ino;    /* holder, a socket: the inode of the migrant's end */
	int stype;            /* 0, or a socket's type (SOCK_STREAM...): one message per frame, both directions */
	size_t unacked;       /* src: sent, not acknowledged */
	size_t to_ack;        /* dst: written, not acknowledged yet */
	struct mig_qbuf *qh, *qt;
	struct mig_qbuf *part; /* dst, a socket: a message longer than a frame, being put together */
};

struct mig_pump {
	int sock;
	size_t chunk;         /* data per frame we send (0: MIG_CHUNK_SMALL), from mig_sock_bufs */
	struct mig_pfd p[MIG_MAX_PROXIES];
	size_t n;
	bool out_enabled;     /* src fds are read only when true */
	bool small_writes;    /* dst fds may be blocking: write at most PIPE_BUF after POLLOUT */
	bool holder;          /* the migrant's side: its socketpair ends are ours alone (shutdown on EOF) */
};

/* A frame socket's send buffer made large (MIG_SOCK_BUF; forced when
 * root): the data a frame may carry through it, MIG_CHUNK or
 * MIG_CHUNK_SMALL. */
size_t mig_sock_bufs(int fd);

/* Handle one received frame if it is pump business (DATA, EOF, ACK): 1;
 * 0 if it is not. */
int mig_pump_frame(struct mig_pump *p, const struct mig_hdr *h, const uint8_t *data, size_t len);
/* pollfd entries for the pump's fds (after the caller's own); returns count. */
struct pollfd;
size_t mig_pump_pollfds(struct mig_pump *p, struct pollfd *pfd, size_t max, size_t *map);
/* After poll: act on pfd[i] for pump fd map[i]. -errno if the socket failed. */
int mig_pump_ready(struct mig_pump *p, size_t idx, short revents);
/* Read every src fd until it is empty (non-blocking fds), ignoring the
 * window; with eof, send EOF after. */
int mig_pump_drain(struct mig_pump *p, bool eof);
/* Send every byte queued for dst fds as `type` frames (fd, data), and
 * forget them. */
int mig_pump_return(struct mig_pump *p, uint8_t type);
/* After a pump frame from sock: read the frames that follow as long as
 * they are pump business and come without waiting (at most max); a frame
 * of another type stays for the caller's next poll. */
void mig_pump_more(struct mig_pump *p, uint8_t *buf, size_t cap, int max);
/* Deputy: a non-blocking open of each proxied pipe (mig_pfd.nb). */
void mig_pump_reopen(struct mig_pump *p);
/* Write what is queued for dst fds, waiting as long as it takes (their
 * flags untouched); the fds stay open. */
void mig_pump_flush(struct mig_pump *p);
/* Write what is queued (best effort, blocking) and close everything. */
void mig_pump_flush_close(struct mig_pump *p);
