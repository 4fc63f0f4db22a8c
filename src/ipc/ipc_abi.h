/* ipc_abi.h — the engine's portable structs to and from the x86_64 kernel
 * ABI of System V IPC (struct msqid64_ds, semid64_ds, msginfo, seminfo,
 * sembuf, msgbuf's mtype), for the interception layer that reads and
 * writes a trapped caller's memory. Byte buffers in, byte buffers out:
 * the layouts are the kernel's own (linux/msg.h, linux/sem.h). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "ipc/ipc_engine.h"

/* Sizes of the kernel structs on x86_64. */
#define KRG_IPC_ABI_MSQID_DS_SIZE 120   /* struct msqid64_ds (= glibc msqid_ds) */
#define KRG_IPC_ABI_SEMID_DS_SIZE 104   /* struct semid64_ds (= glibc semid_ds) */
#define KRG_IPC_ABI_MSGINFO_SIZE  32    /* struct msginfo */
#define KRG_IPC_ABI_SEMINFO_SIZE  40    /* struct seminfo */
#define KRG_IPC_ABI_SEMBUF_SIZE   6     /* struct sembuf */
#define KRG_IPC_ABI_MTYPE_SIZE    8     /* the long before msgbuf's text */

/* Kernel structs from portable ones; out holds the SIZE above. */
void krg_ipc_abi_msqid_ds(const struct krg_ipc_msq_stat *in, void *out);
void krg_ipc_abi_semid_ds(const struct krg_ipc_sem_stat *in, void *out);
void krg_ipc_abi_msginfo(const struct krg_ipc_msginfo *in, void *out);
void krg_ipc_abi_seminfo(const struct krg_ipc_seminfo *in, void *out);

/* What a *ctl reply writes to the caller's buf argument: the bytes in out
 * (cap bytes available), their count, or 0 if the reply writes no struct
 * there (GETALL values: see reply->vals, 2 bytes each). */
size_t krg_ipc_abi_reply_out(const struct krg_ipc_reply *r, void *out, size_t cap);

/* IPC_SET's fields from a caller's struct msqid64_ds / semid64_ds. */
void krg_ipc_abi_msq_setbuf(const void *msqid_ds, struct krg_ipc_setbuf *out);
void krg_ipc_abi_sem_setbuf(const void *semid_ds, struct krg_ipc_setbuf *out);

/* n struct sembuf (n * 6 bytes) to portable form. */
void krg_ipc_abi_sembufs(const void *in, uint32_t n, struct krg_ipc_sembuf *out);
/* System V shm (ipc_abi_shm.c): struct shmid64_ds, shminfo64, shm_info. */
#define KRG_IPC_ABI_SHMID_DS_SIZE 112   /* struct shmid64_ds (= glibc shmid_ds) */
#define KRG_IPC_ABI_SHMINFO_SIZE  72    /* struct shminfo64 (IPC_INFO) */
#define KRG_IPC_ABI_SHM_INFO_SIZE 48    /* struct shm_info (SHM_INFO) */
void krg_ipc_abi_shmid_ds(const struct krg_ipc_shm_stat *in, void *out);
void krg_ipc_abi_shminfo(const struct krg_ipc_shminfo *in, void *out);
void krg_ipc_abi_shm_info(const struct krg_ipc_shm_info *in, void *out);
/* krg_ipc_abi_reply_out for the shm outputs (0 for others). */
size_t krg_ipc_abi_shm_reply_out(const struct krg_ipc_reply *r, void *out, size_t cap);
/* IPC_SET's fields from a caller's struct shmid64_ds. */
void krg_ipc_abi_shm_setbuf(const void *shmid_ds, struct krg_ipc_setbuf *out);

/* mtype of a caller's msgbuf (its first 8 bytes), and back. */
int64_t krg_ipc_abi_mtype_get(const void *msgbuf);
void krg_ipc_abi_mtype_put(int64_t mtype, void *msgbuf);
