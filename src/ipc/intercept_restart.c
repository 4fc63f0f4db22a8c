/* intercept_restart.c — telling a restart after a signal handler from one
 * without. A signal to a caller waiting for its answer drops the
 * notification with -ERESTARTSYS: the kernel restarts the syscall if no
 * handler ran or the handler has SA_RESTART, and returns EINTR otherwise.
 * Linux never restarts msgrcv, msgsnd, semop and semtimedop after a
 * handler (man 7 signal), with or without SA_RESTART. So when the same
 * thread comes back with the same call, the listener looks for the signal
 * frame the handler left below the stack pointer (the kernel writes it
 * under the 128-byte red zone, after the FPU state): a frame whose saved
 * registers are this call's, with rax = the syscall number and rip on the
 * `syscall` instruction, means "a handler ran and the kernel restarted
 * it": the answer is EINTR, as Linux. No frame (a stop, a ptrace stop, an
 * ignored signal) means a plain restart, served as a new call. Frames seen
 * already when the call was parked are stale and do not count. A handler
 * on an alternate stack (sigaltstack) leaves no frame here: that call is
 * restarted (docs/ipc.md, deviations). Only reads the caller's memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "ipc/intercept-int.h"
#include "lib/fileio.h"

#define REDZONE 128
#define SEARCH (32u << 10)  /* covers the FPU state of every x86_64 xsave layout (AMX: ~11 KiB) */
#define PAGE 4096u

/* struct sigcontext_64's offsets of the registers we compare. */
enum { O_R8 = 0, O_R9 = 8, O_R10 = 16, O_RDI = 64, O_RSI = 72, O_RDX = 96, O_RAX = 104, O_RSP = 120, O_RIP = 128, CTX = 136 };

/* "nr a1 a2 a3 a4 a5 a6 sp pc" while in a syscall: the 8th field. */
int irestart_parse_sp(const char *buf, uint64_t *sp)
{
	const char *p = buf;
	char *end;
	uint64_t f[9];
	for (int i = 0; i < 9; i++) {
		f[i] = strtoull(p, &end, 0);
		if (end == p)
			return -EAGAIN;
		p = end;
	}
	*sp = f[7];
	return 0;
}

int irestart_sp(pid_t tid, uint64_t *sp)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)tid);
	if (krg_read_small(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	return irestart_parse_sp(buf, sp);
}

static uint64_t u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The caller's memory [sp - REDZONE - SEARCH, sp - REDZONE), read from
 * the top down (the stack may end below): *lo is where what was read
 * starts in buf (SEARCH bytes). One process_vm_readv with one remote
 * iovec per page, top page first: the kernel stops at the first page that
 * is not mapped, so what it returns is the run of pages below the top.
 * (Page by page this was 8 calls, on every call that parks.) */
static void read_below(pid_t tid, uint64_t sp, uint8_t *buf, size_t *lo)
{
	uint64_t top = sp - REDZONE, base = top - SEARCH;
	struct iovec local[SEARCH / PAGE + 1] = { { 0 } }, remote[SEARCH / PAGE + 1] = { { 0 } };
	size_t n = 0;
	for (uint64_t at = top; at > base && n < SEARCH / PAGE + 1;) {
		uint64_t from = (at - 1) & ~(uint64_t)(PAGE - 1);
		if (from < base)
			from = base;
		local[n] = (struct iovec){ buf + (from - base), at - from };
		remote[n] = (struct iovec){ (void *)(uintptr_t)from, at - from };
		n++;
		at = from;
	}
	ssize_t got = process_vm_readv(tid, local, n, remote, n, 0);
	*lo = SEARCH;
	/* Whole pieces only: a piece read in part is not used. */
	for (size_t i = 0; i < n && got > 0 && (size_t)got >= remote[i].iov_len; i++) {
		got -= (ssize_t)remote[i].iov_len;
		*lo = (size_t)((uint8_t *)local[i].iov_base - buf);
	}
}

/* Does buf[off..] hold a sigcontext of this call? 1: the kernel
 * restarted it after a handler, 2: a handler ran and it returned EINTR,
 * 0: not this call's. */
static int frame_kind(const uint8_t *c, const struct seccomp_data *d, uint64_t sp)
{
	/* The saved stack pointer first: the one value zeros and small
	 * integers on the stack never match (this runs at every 8 bytes of
	 * 32 KiB on every call that parks). */
	if (u64(c + O_RSP) != sp || u64(c + O_R8) != d->args[4] || u64(c + O_R9) != d->args[5] ||
	    u64(c + O_R10) != d->args[3] || u64(c + O_RDI) != d->args[0] || u64(c + O_RSI) != d->args[1] ||
	    u64(c + O_RDX) != d->args[2])
		return 0;
	if (u64(c + O_RAX) == (uint64_t)d->nr && u64(c + O_RIP) == d->instruction_pointer - 2)
		return 1;
	if (u64(c + O_RAX) == (uint64_t)-EINTR && u64(c + O_RIP) == d->instruction_pointer)
		return 2;
	return 0;
}

static uint64_t hash(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* Every frame of this call in the search area, as (offset, hash). */
static size_t frames(const uint8_t *buf, size_t lo, const struct seccomp_data *d, uint64_t sp, struct irestart_frame *out,
		     size_t max, int *kind)
{
	size_t n = 0;
	*kind = 0;
	for (size_t off = (lo + 7) & ~(size_t)7; off + CTX <= SEARCH; off += 8) {
		int k = frame_kind(buf + off, d, sp);
		if (!k)
			continue;
		struct irestart_frame f = { off, hash(buf + off, CTX) };
		if (n < max)
			out[n++] = f;
		*kind = k;
	}
	return n;
}

void irestart_probe_at(pid_t tid, const struct seccomp_data *d, uint64_t sp, struct irestart_probe *p)
{
	memset(p, 0, sizeof(*p));
	p->sp = sp;
	if (sp < REDZONE + SEARCH)
		return;
	uint8_t *buf = malloc(SEARCH);
	if (!buf)
		return;
	size_t lo;
	int kind;
	read_below(tid, sp, buf, &lo);
	p->nstale = frames(buf, lo, d, sp, p->stale, IRESTART_MAX_STALE, &kind);
	p->valid = true;
	free(buf);
}

bool irestart_after_handler(pid_t tid, const struct seccomp_data *d, const struct irestart_probe *p)
{
	uint64_t sp;
	if (!p->valid || irestart_sp(tid, &sp) < 0 || sp != p->sp)
		return false;
	uint8_t *buf = malloc(SEARCH);
	if (!buf)
		return false;
	size_t lo;
	read_below(tid, sp, buf, &lo);
	bool handler = false;
	for (size_t off = (lo + 7) & ~(size_t)7; off + CTX <= SEARCH && !handler; off += 8) {
		if (frame_kind(buf + off, d, sp) != 1)
			continue;
		uint64_t h = hash(buf + off, CTX);
		bool stale = false;
		for (size_t i = 0; i < p->nstale; i++)
			stale |= p->stale[i].off == off && p->stale[i].hash == h;
		handler = !stale;
	}
	free(buf);
	return handler;
}
