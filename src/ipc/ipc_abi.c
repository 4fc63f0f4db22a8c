/* ipc_abi.c — portable engine structs <-> x86_64 kernel IPC structs.
 * Only the kernel's uapi headers here (not glibc's sys/msg.h, whose
 * struct ipc_perm would clash): the layouts are the kernel's by definition. */
#include <linux/msg.h>
#include <linux/sem.h>
#include <assert.h>
#include <string.h>
#include "ipc/ipc_abi.h"

static_assert(sizeof(struct msqid64_ds) == KRG_IPC_ABI_MSQID_DS_SIZE, "msqid64_ds");
static_assert(sizeof(struct semid64_ds) == KRG_IPC_ABI_SEMID_DS_SIZE, "semid64_ds");
static_assert(sizeof(struct msginfo) == KRG_IPC_ABI_MSGINFO_SIZE, "msginfo");
static_assert(sizeof(struct seminfo) == KRG_IPC_ABI_SEMINFO_SIZE, "seminfo");
static_assert(sizeof(struct sembuf) == KRG_IPC_ABI_SEMBUF_SIZE, "sembuf");
static_assert(sizeof(long) == KRG_IPC_ABI_MTYPE_SIZE, "mtype");

static void perm_out(const struct krg_ipc_perm *in, struct ipc64_perm *p)
{
	p->key = in->key;
	p->uid = in->uid;
	p->gid = in->gid;
	p->cuid = in->cuid;
	p->cgid = in->cgid;
	p->mode = in->mode;
	/* The kernel stores seq in an unsigned short (ipc64_perm.seq). */
	p->seq = (unsigned short)in->seq;
}

void krg_ipc_abi_msqid_ds(const struct krg_ipc_msq_stat *in, void *out)
{
	struct msqid64_ds d;
	memset(&d, 0, sizeof d);
	perm_out(&in->perm, &d.msg_perm);
	d.msg_stime = in->stime;
	d.msg_rtime = in->rtime;
	d.msg_ctime = in->ctime;
	d.msg_cbytes = in->cbytes;
	d.msg_qnum = in->qnum;
	d.msg_qbytes = in->qbytes;
	d.msg_lspid = in->lspid;
	d.msg_lrpid = in->lrpid;
	memcpy(out, &d, sizeof d);
}

void krg_ipc_abi_semid_ds(const struct krg_ipc_sem_stat *in, void *out)
{
	struct semid64_ds d;
	memset(&d, 0, sizeof d);
	perm_out(&in->perm, &d.sem_perm);
	d.sem_otime = in->otime;
	d.sem_ctime = in->ctime;
	d.sem_nsems = in->nsems;
	memcpy(out, &d, sizeof d);
}

void krg_ipc_abi_msginfo(const struct krg_ipc_msginfo *in, void *out)
{
	struct msginfo m = {
		.msgpool = in->msgpool, .msgmap = in->msgmap, .msgmax = in->msgmax,
		.msgmnb = in->msgmnb, .msgmni = in->msgmni, .msgssz = in->msgssz,
		.msgtql = in->msgtql, .msgseg = in->msgseg,
	};
	memcpy(out, &m, sizeof m);
}

void krg_ipc_abi_seminfo(const struct krg_ipc_seminfo *in, void *out)
{
	struct seminfo s = {
		.semmap = in->semmap, .semmni = in->semmni, .semmns = in->semmns,
		.semmnu = in->semmnu, .semmsl = in->semmsl, .semopm = in->semopm,
		.semume = in->semume, .semusz = in->semusz, .semvmx = in->semvmx,
		.semaem = in->semaem,
	};
	memcpy(out, &s, sizeof s);
}

size_t krg_ipc_abi_reply_out(const struct krg_ipc_reply *r, void *out, size_t cap)
{
	switch (r->out) {
	case KRG_IPC_OUT_MSQ_STAT:
		if (cap < KRG_IPC_ABI_MSQID_DS_SIZE)
			return 0;
		krg_ipc_abi_msqid_ds(&r->msq, out);
		return KRG_IPC_ABI_MSQID_DS_SIZE;
	case KRG_IPC_OUT_SEM_STAT:
		if (cap < KRG_IPC_ABI_SEMID_DS_SIZE)
			return 0;
		krg_ipc_abi_semid_ds(&r->sem, out);
		return KRG_IPC_ABI_SEMID_DS_SIZE;
	case KRG_IPC_OUT_MSGINFO:
		if (cap < KRG_IPC_ABI_MSGINFO_SIZE)
			return 0;
		krg_ipc_abi_msginfo(&r->msginfo, out);
		return KRG_IPC_ABI_MSGINFO_SIZE;
	case KRG_IPC_OUT_SEMINFO:
		if (cap < KRG_IPC_ABI_SEMINFO_SIZE)
			return 0;
		krg_ipc_abi_seminfo(&r->seminfo, out);
		return KRG_IPC_ABI_SEMINFO_SIZE;
	default:
		return krg_ipc_abi_shm_reply_out(r, out, cap);
	}
}

void krg_ipc_abi_msq_setbuf(const void *msqid_ds, struct krg_ipc_setbuf *out)
{
	struct msqid64_ds d;
	memcpy(&d, msqid_ds, sizeof d);
	out->uid = d.msg_perm.uid;
	out->gid = d.msg_perm.gid;
	out->mode = d.msg_perm.mode;
	out->qbytes = d.msg_qbytes;
}

void krg_ipc_abi_sem_setbuf(const void *semid_ds, struct krg_ipc_setbuf *out)
{
	struct semid64_ds d;
	memcpy(&d, semid_ds, sizeof d);
	out->uid = d.sem_perm.uid;
	out->gid = d.sem_perm.gid;
	out->mode = d.sem_perm.mode;
	out->qbytes = 0;
}

void krg_ipc_abi_sembufs(const void *in, uint32_t n, struct krg_ipc_sembuf *out)
{
	const unsigned char *p = in;
	for (uint32_t i = 0; i < n; i++) {
		struct sembuf s;
		memcpy(&s, p + (size_t)i * sizeof s, sizeof s);
		out[i].num = s.sem_num;
		out[i].op = s.sem_op;
		out[i].flg = s.sem_flg;
	}
}

int64_t krg_ipc_abi_mtype_get(const void *msgbuf)
{
	long t;
	memcpy(&t, msgbuf, sizeof t);
	return t;
}

void krg_ipc_abi_mtype_put(int64_t mtype, void *msgbuf)
{
	long t = (long)mtype;
	memcpy(msgbuf, &t, sizeof t);
}
