/* inject.h — syscalls run inside a frozen process (inject.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct inj {
	pid_t pid;                        /* the thread we run in: the leader, or a live one if it exited */
	pid_t tgid;                       /* the process (an exec makes pid this) */
	bool attached, execed;
	int pending;                      /* a signal that showed up: given back at detach */
	uint64_t insn;                    /* a `syscall` instruction in its vdso */
	struct user_regs_struct saved;
};

/* Seize and interrupt the leader (a live thread if the leader exited).
 * 0 or -errno (inj_detach anyway). */
int inj_attach(struct inj *j, pid_t pid);
/* The syscall's return value (-errno on failure, also ptrace's). */
long inj_call(struct inj *j, long nr, long a1, long a2, long a3, long a4, long a5, long a6);
int inj_poke(struct inj *j, uint64_t addr, const void *buf, size_t len);
/* Registers back (unless it exec'd), detach. */
void inj_detach(struct inj *j);
