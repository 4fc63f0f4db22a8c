/* engine_limits.c — Linux's IPC limits and the *_INFO structs built from
 * them (kernel msgctl_info/semctl_info). Pure. */
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <stdlib.h>
#include <string.h>
#include "ipc/ipc_engine.h"

/* Linux uapi constants (linux/msg.h, linux/sem.h) that *_INFO report as
 * fixed values; spelled out because glibc's headers do not carry them. */
enum {
	L_MSGMNI = 32000, L_MSGMAX = 8192, L_MSGMNB = 16384,
	L_MSGPOOL = L_MSGMNI * L_MSGMNB / 1024,
	L_MSGTQL = L_MSGMNB, L_MSGMAP = L_MSGMNB, L_MSGSSZ = 16,
	L_MSGSEG = 0xffff,          /* (MSGPOOL * 1024) / MSGSSZ, capped to a ushort */
	L_SEMMNI = 32000, L_SEMMSL = 32000, L_SEMOPM = 500, L_SEMVMX = 32767,
	L_SEMMNS = L_SEMMNI * L_SEMMSL, L_SEMUME = L_SEMOPM, L_SEMMNU = L_SEMMNS,
	L_SEMMAP = L_SEMMNS, L_SEMUSZ = 20, L_SEMAEM = L_SEMVMX,
};

void krg_ipc_limits_default(struct krg_ipc_limits *l)
{
	l->msgmax = L_MSGMAX;
	l->msgmnb = L_MSGMNB;
	l->msgmni = L_MSGMNI;
	l->semmsl = L_SEMMSL;
	l->semmns = L_SEMMNS;
	l->semopm = L_SEMOPM;
	l->semmni = L_SEMMNI;
	l->semvmx = L_SEMVMX;
	l->semaem = L_SEMAEM;
	/* linux/shm.h: SHMMAX = SHMALL = ULONG_MAX - 2^24, SHMMNI 4096. */
	l->shmmax = UINT64_MAX - (1ull << 24);
	l->shmall = UINT64_MAX - (1ull << 24);
	l->shmmni = 4096;
}

static int32_t clamp_int(uint64_t v)
{
	return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

/* Linux's ipc_get_maxidx: -1 when empty; the syscall returns 0 then. */
static int32_t maxidx_ret(int32_t max_idx)
{
	return max_idx < 0 ? 0 : max_idx;
}

int32_t krg_ipc_msginfo_fill(const struct krg_ipc_limits *l, const struct krg_ipc_usage *u,
		int32_t cmd, struct krg_ipc_msginfo *out)
{
	memset(out, 0, sizeof *out);
	out->msgmni = clamp_int(l->msgmni);
	out->msgmax = clamp_int(l->msgmax);
	out->msgmnb = clamp_int(l->msgmnb);
	out->msgssz = L_MSGSSZ;
	out->msgseg = L_MSGSEG;
	if (cmd == MSG_INFO) {
		/* MSG_INFO reuses the fields for usage (man 2 msgctl). */
		out->msgpool = clamp_int(u->msq_count);
		out->msgmap = clamp_int(u->msg_count);
		out->msgtql = clamp_int(u->msg_bytes);
	} else {
		out->msgmap = L_MSGMAP;
		out->msgpool = L_MSGPOOL;
		out->msgtql = L_MSGTQL;
	}
	return maxidx_ret(u->msq_max_idx);
}

int32_t krg_ipc_seminfo_fill(const struct krg_ipc_limits *l, const struct krg_ipc_usage *u,
		int32_t cmd, struct krg_ipc_seminfo *out)
{
	memset(out, 0, sizeof *out);
	out->semmni = clamp_int(l->semmni);
	out->semmns = clamp_int(l->semmns);
	out->semmsl = clamp_int(l->semmsl);
	out->semopm = clamp_int(l->semopm);
	out->semvmx = clamp_int(l->semvmx);
	out->semmnu = L_SEMMNU;
	out->semmap = L_SEMMAP;
	out->semume = L_SEMUME;
	if (cmd == SEM_INFO) {
		/* SEM_INFO: sets in use, semaphores in use (man 2 semctl). */
		out->semusz = clamp_int(u->sem_count);
		out->semaem = clamp_int(u->sem_total);
	} else {
		out->semusz = L_SEMUSZ;
		out->semaem = clamp_int(l->semaem);
	}
	return maxidx_ret(u->sem_max_idx);
}

int32_t krg_ipc_shminfo_fill(const struct krg_ipc_limits *l, const struct krg_ipc_usage *u,
		int32_t cmd, struct krg_ipc_reply *out)
{
	if (cmd == SHM_INFO) {
		/* Resident and swapped pages are each node's; the home counts none. */
		memset(&out->shm_info, 0, sizeof out->shm_info);
		out->shm_info.used_ids = clamp_int(u->shm_count);
		out->shm_info.shm_tot = u->shm_tot;
		out->out = KRG_IPC_OUT_SHM_INFO;
	} else {
		out->shminfo.shmmax = l->shmmax;
		out->shminfo.shmmin = 1;
		out->shminfo.shmmni = l->shmmni;
		out->shminfo.shmseg = l->shmmni; /* Linux reports SHMSEG as shmmni */
		out->shminfo.shmall = l->shmall;
		out->out = KRG_IPC_OUT_SHMINFO;
	}
	return maxidx_ret(u->shm_max_idx);
}

void krg_ipc_reply_release(struct krg_ipc_reply *r)
{
	free(r->text);
	free(r->vals);
	r->text = NULL;
	r->text_len = 0;
	r->vals = NULL;
	r->nvals = 0;
}
