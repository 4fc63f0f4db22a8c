/* ipc_abi_shm.c — System V shm's kernel structs on x86_64 (linux/shm.h,
 * asm-generic/shmbuf.h) to and from the engine's portable ones, for the
 * interception of shmctl (docs/dsm.md). */
#include <linux/shm.h>
#include <assert.h>
#include <string.h>
#include "ipc/ipc_abi.h"

static_assert(sizeof(struct shmid64_ds) == KRG_IPC_ABI_SHMID_DS_SIZE, "shmid64_ds");
static_assert(sizeof(struct shminfo64) == KRG_IPC_ABI_SHMINFO_SIZE, "shminfo64");
static_assert(sizeof(struct shm_info) == KRG_IPC_ABI_SHM_INFO_SIZE, "shm_info");

void krg_ipc_abi_shmid_ds(const struct krg_ipc_shm_stat *in, void *out)
{
	struct shmid64_ds d;
	memset(&d, 0, sizeof d);
	d.shm_perm.key = in->perm.key;
	d.shm_perm.uid = in->perm.uid;
	d.shm_perm.gid = in->perm.gid;
	d.shm_perm.cuid = in->perm.cuid;
	d.shm_perm.cgid = in->perm.cgid;
	d.shm_perm.mode = in->perm.mode;  /* with SHM_DEST / SHM_LOCKED */
	d.shm_perm.seq = (unsigned short)in->perm.seq;
	d.shm_segsz = in->segsz;
	d.shm_atime = in->atime;
	d.shm_dtime = in->dtime;
	d.shm_ctime = in->ctime;
	d.shm_cpid = in->cpid;
	d.shm_lpid = in->lpid;
	d.shm_nattch = in->nattch;
	memcpy(out, &d, sizeof d);
}

void krg_ipc_abi_shminfo(const struct krg_ipc_shminfo *in, void *out)
{
	struct shminfo64 i;
	memset(&i, 0, sizeof i);
	i.shmmax = in->shmmax;
	i.shmmin = in->shmmin;
	i.shmmni = in->shmmni;
	i.shmseg = in->shmseg;
	i.shmall = in->shmall;
	memcpy(out, &i, sizeof i);
}

void krg_ipc_abi_shm_info(const struct krg_ipc_shm_info *in, void *out)
{
	struct shm_info i;
	memset(&i, 0, sizeof i);
	i.used_ids = in->used_ids;
	i.shm_tot = in->shm_tot;
	i.shm_rss = in->shm_rss;
	i.shm_swp = in->shm_swp;
	i.swap_attempts = in->swap_attempts;
	i.swap_successes = in->swap_successes;
	memcpy(out, &i, sizeof i);
}

size_t krg_ipc_abi_shm_reply_out(const struct krg_ipc_reply *r, void *out, size_t cap)
{
	switch (r->out) {
	case KRG_IPC_OUT_SHM_STAT:
		if (cap < KRG_IPC_ABI_SHMID_DS_SIZE)
			return 0;
		krg_ipc_abi_shmid_ds(&r->shm, out);
		return KRG_IPC_ABI_SHMID_DS_SIZE;
	case KRG_IPC_OUT_SHMINFO:
		if (cap < KRG_IPC_ABI_SHMINFO_SIZE)
			return 0;
		krg_ipc_abi_shminfo(&r->shminfo, out);
		return KRG_IPC_ABI_SHMINFO_SIZE;
	case KRG_IPC_OUT_SHM_INFO:
		if (cap < KRG_IPC_ABI_SHM_INFO_SIZE)
			return 0;
		krg_ipc_abi_shm_info(&r->shm_info, out);
		return KRG_IPC_ABI_SHM_INFO_SIZE;
	default:
		return 0;
	}
}

void krg_ipc_abi_shm_setbuf(const void *shmid_ds, struct krg_ipc_setbuf *out)
{
	struct shmid64_ds d;
	memcpy(&d, shmid_ds, sizeof d);
	memset(out, 0, sizeof *out);
	out->uid = d.shm_perm.uid;
	out->gid = d.shm_perm.gid;
	out->mode = d.shm_perm.mode;
}
