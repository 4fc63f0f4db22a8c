/* run_client.h — the client side of a "proc.run" stream (docs/krg-run.md,
 * docs/protocol.md "proc.run"): the one implementation of its framing,
 * stdin window and frame decoding, used by `krg run` / `krg restart
 * --foreground` (src/krg/cmd_run.c) and by DRMAA's job shepherd
 * (src/drmaa/shepherd.c). Each caller keeps its own poll loop and policy
 * (terminal, signals, limits); this module never blocks and never prints.
 *
 * Use: krg_api_call_stream() gives the socket and RunStarted.window; then
 * poll the socket for krg_run_client_events(), call krg_run_client_send()
 * on POLLOUT and krg_run_client_recv() on POLLIN/POLLHUP/POLLERR; read
 * stdin with krg_run_client_read_stdin() while krg_run_client_wants_stdin().
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct Krg__Proc__Io;
struct Krg__Proc__Rlimit;
struct Krg__Proc__RunRequest;

/* The largest stdin chunk krgd takes in one frame (= EXEC_CHUNK). */
#define KRG_RUN_CHUNK (256u << 10)

struct krg_run_client {
	int sock;
	size_t window;   /* stdin bytes sent and not credited back; 0 = no limit */
	size_t inflight; /* stdin bytes sent, not yet credited */
	bool stdin_done; /* EOF queued */
	int wdead;       /* errno once krgd closed its side: only read from then */
	/* frames to send: out[off..len) */
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	/* received bytes not parsed yet */
	uint8_t *in;
	size_t in_len, in_cap;
};

/* What krg_run_client_recv reports. */
struct krg_run_client_cbs {
	/* Output of the remote process on fd 1 or 2. */
	void (*output)(void *data, unsigned fd, const uint8_t *bytes, size_t len);
	/* The last frame: the process ended (io->exited, code or term_signal,
	 * rusage) or krg failed (io->error). io is freed after the call. */
	void (*ended)(void *data, const struct Krg__Proc__Io *io);
};

/* The caller's resource limits into req (the job runs under them), held
 * in rl/rlp (RLIM_NLIMITS entries each) that the caller keeps until req
 * is packed. cpu_soft/cpu_hard, when not 0, replace RLIMIT_CPU's (DRMAA's
 * run duration limits: SIGXCPU at the soft one, SIGKILL at the hard one). */
void krg_run_request_rlimits(struct Krg__Proc__RunRequest *req, struct Krg__Proc__Rlimit *rl,
			     struct Krg__Proc__Rlimit **rlp, uint64_t cpu_soft, uint64_t cpu_hard);

int krg_run_client_init(struct krg_run_client *c, int sock, size_t window);
void krg_run_client_free(struct krg_run_client *c);

/* Queue control frames. -ENOMEM when out of memory. */
int krg_run_client_signal(struct krg_run_client *c, int sig);
int krg_run_client_winsize(struct krg_run_client *c, unsigned rows, unsigned cols);
int krg_run_client_stdin_eof(struct krg_run_client *c);

/* May stdin be read now: not at EOF, within the window, and fewer than
 * max_queued bytes waiting to be sent. */
bool krg_run_client_wants_stdin(const struct krg_run_client *c, size_t max_queued);

/* Read one chunk of stdin from fd (within the window) and queue it, or
 * queue EOF. Returns the bytes read (0 at EOF), or -errno (-EAGAIN and
 * -EINTR: nothing happened, try later). */
ssize_t krg_run_client_read_stdin(struct krg_run_client *c, int fd);

/* poll(2) events for the socket. */
short krg_run_client_events(const struct krg_run_client *c);

/* Send what is queued (non-blocking). krgd closing its side is not an
 * error: the frames still to read say how the process ended. */
void krg_run_client_send(struct krg_run_client *c);

/* Send everything queued, waiting up to timeout_ms per step (before the
 * caller stops itself on SIGTSTP). */
void krg_run_client_flush(struct krg_run_client *c, int timeout_ms);

/* Read what the socket has and hand every complete frame to cbs. Returns
 * 1 once the ending frame was handed over, 0 to go on, -EAGAIN if nothing
 * was there, or an error: -ECONNRESET (krgd closed the stream; c->wdead
 * may say why), -EBADMSG (a bad frame), -ENOMEM. */
int krg_run_client_recv(struct krg_run_client *c, const struct krg_run_client_cbs *cbs, void *data);
