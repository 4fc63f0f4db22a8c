/* intercept_filter.c — krg's seccomp filter: System V msg and sem
 * syscalls and shmget/shmat/shmctl of x86_64 go to krgd's listener
 * (shmdt: krgd unmaps what its shmat mapped), the same calls through the
 * x32 and i386 entry points fail with ENOSYS; x86_64 execve and execveat
 * go to the listener too (placement at exec, docs/sched.md), except an
 * execve krg makes itself (KRG_INTERCEPT_EXEC_PASS in its 4th argument);
 * so does a futex without FUTEX_PRIVATE_FLAG (shared memory across nodes);
 * in a migrant with forwarded sockets, getsockname, getpeername and
 * getsockopt too
 * (docs/migration.md, "Forwarded fds"); everything else runs natively. Async-signal-safe throughout (used
 * between fork and exec). */
#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ipc/intercept.h"

#define X32_BIT 0x40000000u

/* x86_64 numbers (also x32's, with X32_BIT). */
static const uint32_t x64_calls[] = { 29 /* shmget */, 30 /* shmat */, 31 /* shmctl */, 67 /* shmdt */, 64 /* semget */,
				      65 /* semop */, 66 /* semctl */, 68 /* msgget */, 69 /* msgsnd */,
				      70 /* msgrcv */, 71 /* msgctl */, 220 /* semtimedop */ };
/* ipc(2)'s call numbers (low 16 bits of its first argument). */
static const uint32_t ipc_calls[] = { 1 /* SEMOP */, 2 /* SEMGET */, 3 /* SEMCTL */, 4 /* SEMTIMEDOP */,
				      11 /* MSGSND */, 12 /* MSGRCV */, 13 /* MSGGET */, 14 /* MSGCTL */,
				      21 /* SHMAT */, 23 /* SHMGET */, 24 /* SHMCTL */ };
/* i386's direct syscalls (Linux 5.1+): semget, semctl, shmget, shmctl,
 * shmat, msgget, msgsnd, msgrcv, msgctl, semtimedop_time64. */
static const uint32_t i386_calls[] = { 393, 394, 395, 396, 397, 399, 400, 401, 402, 420 };
#define I386_IPC 117
#define N(a) (sizeof(a) / sizeof((a)[0]))

#define NR_GETSOCKNAME 51
#define NR_GETPEERNAME 52
#define NR_GETSOCKOPT 55
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define NR_FUTEX 202
#define FUTEX_PRIVATE 128

enum { L_NOTIFY, L_ENOSYS, L_ALLOW, L_X32, L_I386, L_DIRECT, L_EXECVE, L_FUTEX, L_N };

/* A tiny assembler: jumps name a label, patched once every label is known. */
struct prog {
	struct sock_filter *f;
	size_t n;
	size_t label[L_N];
	struct { size_t at; int jt, jf; } fix[KRG_INTERCEPT_FILTER_SOCK_LEN];
	size_t nfix;
};

static void op(struct prog *p, uint16_t code, uint32_t k)
{
	p->f[p->n++] = (struct sock_filter)BPF_STMT(code, k);
}

/* Conditional jump; jt/jf: a label, or -1 for the next instruction. */
static void jmp(struct prog *p, uint16_t code, uint32_t k, int jt, int jf)
{
	p->fix[p->nfix].at = p->n;
	p->fix[p->nfix].jt = jt;
	p->fix[p->nfix].jf = jf;
	p->nfix++;
	p->f[p->n++] = (struct sock_filter)BPF_JUMP(code, k, 0, 0);
}

static void label(struct prog *p, int l)
{
	p->label[l] = p->n;
}

size_t krg_intercept_filter_for(struct sock_filter out[KRG_INTERCEPT_FILTER_SOCK_LEN], bool sockets)
{
	struct prog p = { .f = out };
	memset(out, 0, (sockets ? KRG_INTERCEPT_FILTER_SOCK_LEN : KRG_INTERCEPT_FILTER_LEN) * sizeof(*out));
	op(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, -1, L_I386);
	op(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	jmp(&p, BPF_JMP | BPF_JGE | BPF_K, X32_BIT, L_X32, -1);
	for (size_t i = 0; i < N(x64_calls); i++)
		jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, x64_calls[i], L_NOTIFY, -1);
	jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, NR_EXECVE, L_EXECVE, -1);
	jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, NR_EXECVEAT, L_NOTIFY, -1);
	jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, NR_FUTEX, L_FUTEX, -1);
	/* A migrant with forwarded sockets: their addresses are home's. */
	if (sockets) {
		jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, NR_GETSOCKNAME, L_NOTIFY, -1);
		jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, NR_GETPEERNAME, L_NOTIFY, -1);
		jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, NR_GETSOCKOPT, L_NOTIFY, -1);
	}
	op(&p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	/* A futex without FUTEX_PRIVATE_FLAG may be on a segment shared
	 * across nodes (docs/dsm.md, "Futexes"); private ones run natively. */
	label(&p, L_FUTEX);
	op(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]));
	jmp(&p, BPF_JMP | BPF_JSET | BPF_K, FUTEX_PRIVATE, L_ALLOW, L_NOTIFY);
	/* execve has three arguments: a fourth (r10) equal to krg's pass is
	 * krg's own exec (a deputy, a ghost), not the program's. */
	label(&p, L_EXECVE);
	op(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3]));
	jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)KRG_INTERCEPT_EXEC_PASS, -1, L_NOTIFY);
	op(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3]) + 4);
	jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(KRG_INTERCEPT_EXEC_PASS >> 32), L_ALLOW, L_NOTIFY);
	label(&p, L_X32);
	op(&p, BPF_ALU | BPF_AND | BPF_K, ~X32_BIT);
	for (size_t i = 0; i < N(x64_calls); i++)
		jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, x64_calls[i], L_ENOSYS, -1);
	op(&p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	label(&p, L_I386);
	jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, -1, L_ALLOW);
	op(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, I386_IPC, -1, L_DIRECT);
	/* Little-endian: the low word of args[0] comes first. */
	op(&p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
	op(&p, BPF_ALU | BPF_AND | BPF_K, 0xffff);
	for (size_t i = 0; i < N(ipc_calls); i++)
		jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, ipc_calls[i], L_ENOSYS, -1);
	op(&p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	label(&p, L_DIRECT);
	for (size_t i = 0; i < N(i386_calls); i++)
		jmp(&p, BPF_JMP | BPF_JEQ | BPF_K, i386_calls[i], L_ENOSYS, -1);
	op(&p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	label(&p, L_NOTIFY);
	op(&p, BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	label(&p, L_ENOSYS);
	op(&p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	label(&p, L_ALLOW);
	op(&p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	for (size_t i = 0; i < p.nfix; i++) {
		size_t at = p.fix[i].at;
		if (p.fix[i].jt >= 0)
			out[at].jt = (uint8_t)(p.label[p.fix[i].jt] - at - 1);
		if (p.fix[i].jf >= 0)
			out[at].jf = (uint8_t)(p.label[p.fix[i].jf] - at - 1);
	}
	return p.n;
}

size_t krg_intercept_filter(struct sock_filter out[KRG_INTERCEPT_FILTER_LEN])
{
	struct sock_filter f[KRG_INTERCEPT_FILTER_SOCK_LEN];
	size_t n = krg_intercept_filter_for(f, false);
	memcpy(out, f, n * sizeof(*f));
	return n;
}

bool krg_intercept_filter_is_ours(const struct sock_filter *prog, size_t n)
{
	struct sock_filter ours[KRG_INTERCEPT_FILTER_SOCK_LEN];
	for (int sockets = 0; sockets < 2; sockets++) {
		size_t len = krg_intercept_filter_for(ours, sockets);
		if (n == len && memcmp(prog, ours, len * sizeof(*ours)) == 0)
			return true;
	}
	return false;
}

int krg_intercept_install(void)
{
	struct sock_filter f[KRG_INTERCEPT_FILTER_LEN];
	struct sock_fprog prog = { .len = (unsigned short)krg_intercept_filter(f), .filter = f };
	long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	return fd < 0 ? -errno : (int)fd;
}
