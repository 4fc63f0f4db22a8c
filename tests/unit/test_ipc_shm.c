/* Unit tests for System V shared memory segments in the IPC engine
 * (src/ipc/engine_shm.c, docs/dsm.md): shmget's checks in Linux's order,
 * every shmctl command, attachments counted by SHMAT/SHMDT and IPC_RMID
 * destroying at the last detach, permissions, limits, export/import; and
 * one sequence run against this kernel (a fresh IPC namespace, root) and
 * the engine side by side, which must agree call by call. */
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ipc_test.h"
#include "ipc/ipc_abi.h"

static struct krg_ipc_req q_shmget(int32_t key, uint64_t size, int flg)
{
	struct krg_ipc_req q = { .op = KRG_IPC_OP_SHMGET, .id = KRG_IPC_ID_ANY, .key = key,
		.flags = flg, .size = size };
	return q;
}

static struct krg_ipc_req q_shmctl(int32_t id, int cmd)
{
	struct krg_ipc_req q = { .op = KRG_IPC_OP_SHMCTL, .id = id, .cmd = cmd };
	return q;
}

static struct krg_ipc_req q_shmat(int32_t id, int flg)
{
	struct krg_ipc_req q = { .op = KRG_IPC_OP_SHMAT, .id = id, .flags = flg };
	return q;
}

static struct krg_ipc_req q_shmdt(int32_t id)
{
	struct krg_ipc_req q = { .op = KRG_IPC_OP_SHMDT, .id = id };
	return q;
}

static struct krg_ipc_shm_stat t_stat(struct t *t, const struct krg_ipc_caller *c, int32_t id)
{
	struct krg_ipc_req q = q_shmctl(id, IPC_STAT);
	struct krg_ipc_reply r;
	assert_int_equal(t_call(t, c, &q, NULL, &r), KRG_IPC_DONE);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.out, KRG_IPC_OUT_SHM_STAT);
	return r.shm;
}

static void test_shmget(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 100, 10), b = who(2000, 200, 20), root = root_c(1);
	struct krg_ipc_req q = q_shmget(IPC_PRIVATE, 0, 0600);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);           /* < SHMMIN */
	q = q_shmget(0x55, 10000, IPC_CREAT | 0640);
	int32_t id = (int32_t)t_ret(t, &a, &q);
	assert_true(id >= 0);
	q = q_shmget(0x55, 10000, IPC_CREAT | IPC_EXCL | 0600);
	assert_int_equal(t_ret(t, &a, &q), -EEXIST);
	q = q_shmget(0x55, 10001, 0);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);           /* larger than the segment */
	q = q_shmget(0x55, 0, 0);
	assert_int_equal(t_ret(t, &a, &q), id);
	q = q_shmget(0x56, 100, 0);
	assert_int_equal(t_ret(t, &a, &q), -ENOENT);
	q = q_shmget(0x55, 0, 0600);
	assert_int_equal(t_ret(t, &b, &q), -EACCES);           /* other bits are 0 */
	/* EINVAL (size) comes before EACCES, as shm_more_checks runs first */
	q = q_shmget(0x55, 20000, 0600);
	assert_int_equal(t_ret(t, &b, &q), -EINVAL);
	q = q_shmget(0x55, 0, 0600);
	assert_int_equal(t_ret(t, &root, &q), id);             /* CAP_IPC_OWNER */
	struct krg_ipc_shm_stat s = t_stat(t, &a, id);
	assert_int_equal(s.segsz, 10000);
	assert_int_equal(s.perm.key, 0x55);
	assert_int_equal(s.perm.mode, 0640);
	assert_int_equal(s.perm.uid, 1000);
	assert_int_equal(s.perm.cgid, 100);
	assert_int_equal(s.cpid, 10);
	assert_int_equal(s.lpid, 0);
	assert_int_equal(s.nattch, 0);
	assert_int_equal(s.atime, 0);
	assert_int_equal(s.ctime, (int64_t)(T_NOW / T_SEC));
	/* limits: shmmax, shmall (pages), shmmni */
	t->lim.shmmax = 8192;
	t->lim.shmall = 5;
	t->lim.shmmni = 2;
	krg_ipc_engine_set_limits(t->e, &t->lim);
	q = q_shmget(IPC_PRIVATE, 8193, 0600);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	q = q_shmget(IPC_PRIVATE, 8192, 0600);
	assert_true(t_ret(t, &a, &q) >= 0);                    /* 3 + 2 pages = shmall */
	q = q_shmget(IPC_PRIVATE, 1, 0600);
	assert_int_equal(t_ret(t, &a, &q), -ENOSPC);           /* one page more */
	t->lim.shmall = 100;
	krg_ipc_engine_set_limits(t->e, &t->lim);
	assert_int_equal(t_ret(t, &a, &q), -ENOSPC);           /* shmmni: 2 in use */
	t_free(t);
}

static void test_attach_rmid(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 100, 10), b = who(2000, 100, 20), c = who(3000, 300, 30);
	struct krg_ipc_req q = q_shmget(0x77, 4096, IPC_CREAT | 0640);
	int32_t id = (int32_t)t_ret(t, &a, &q);
	/* group member b may read only; stranger c nothing */
	q = q_shmat(id, 0);
	assert_int_equal(t_ret(t, &b, &q), -EACCES);
	q = q_shmat(id, SHM_RDONLY);
	assert_int_equal(t_ret(t, &c, &q), -EACCES);
	q = q_shmat(id, SHM_RDONLY | SHM_EXEC);
	assert_int_equal(t_ret(t, &b, &q), -EACCES);
	t->now += 5 * T_SEC;
	q = q_shmat(id, SHM_RDONLY);
	struct krg_ipc_reply r;
	assert_int_equal(t_call(t, &b, &q, NULL, &r), KRG_IPC_DONE);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.shm.segsz, 4096);                   /* the node learns the size */
	q = q_shmat(id, 0);
	assert_int_equal(t_ret(t, &a, &q), 0);
	q = q_shmat(id + KRG_IPC_SEQ_MULT, 0);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);           /* stale seq */
	struct krg_ipc_shm_stat s = t_stat(t, &a, id);
	assert_int_equal(s.nattch, 2);
	assert_int_equal(s.lpid, 10);
	assert_int_equal(s.atime, (int64_t)(T_NOW / T_SEC) + 5);
	/* RMID by a non-owner: EPERM; by the owner: marked, key private */
	q = q_shmctl(id, IPC_RMID);
	assert_int_equal(t_ret(t, &b, &q), -EPERM);
	assert_int_equal(t_ret(t, &a, &q), 0);
	s = t_stat(t, &a, id);
	assert_int_equal(s.perm.mode, 0640 | SHM_DEST);
	assert_int_equal(s.perm.key, IPC_PRIVATE);
	q = q_shmget(0x77, 0, 0);
	assert_int_equal(t_ret(t, &a, &q), -ENOENT);
	/* still attachable by id (Linux allows it), and a new key is free */
	q = q_shmat(id, 0);
	assert_int_equal(t_ret(t, &a, &q), 0);
	q = q_shmget(0x77, 100, IPC_CREAT | 0600);
	int32_t id2 = (int32_t)t_ret(t, &a, &q);
	assert_true(id2 >= 0 && id2 != id);
	/* the last detach anywhere destroys it */
	q = q_shmdt(id);
	t->now += T_SEC;
	assert_int_equal(t_ret(t, &a, &q), 0);
	assert_int_equal(t_ret(t, &b, &q), 0);
	s = t_stat(t, &a, id);
	assert_int_equal(s.nattch, 1);
	assert_int_equal(s.lpid, 20);
	assert_int_equal(s.dtime, (int64_t)(T_NOW / T_SEC) + 6);
	assert_int_equal(t_ret(t, &a, &q), 0);
	struct krg_ipc_req st = q_shmctl(id, IPC_STAT);
	assert_int_equal(t_ret(t, &a, &st), -EINVAL);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);           /* gone */
	/* a detach without an attach is refused */
	q = q_shmdt(id2);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	/* RMID with nobody attached: at once */
	q = q_shmctl(id2, IPC_RMID);
	assert_int_equal(t_ret(t, &a, &q), 0);
	st = q_shmctl(id2, IPC_STAT);
	assert_int_equal(t_ret(t, &a, &st), -EINVAL);
	struct krg_ipc_usage u;
	krg_ipc_engine_usage(t->e, &u);
	assert_int_equal(u.shm_count, 0);
	assert_int_equal(u.shm_tot, 0);
	t_free(t);
}

static void test_shmctl(void **state)
{
	struct t *t = t_new();
	struct krg_ipc_caller a = who(1000, 100, 10), b = who(2000, 200, 20), root = root_c(1);
	struct krg_ipc_req q = q_shmget(0x88, 3 * 4096 + 1, IPC_CREAT | 0600);
	int32_t id = (int32_t)t_ret(t, &a, &q);
	/* IPC_STAT needs read; SHM_STAT by index answers the id; _ANY skips the check */
	q = q_shmctl(id, IPC_STAT);
	assert_int_equal(t_ret(t, &b, &q), -EACCES);
	q = q_shmctl(krg_ipc_id_idx(id), SHM_STAT);
	assert_int_equal(t_ret(t, &a, &q), id);
	assert_int_equal(t_ret(t, &b, &q), -EACCES);
	q = q_shmctl(krg_ipc_id_idx(id), SHM_STAT_ANY);
	assert_int_equal(t_ret(t, &b, &q), id);
	q = q_shmctl(krg_ipc_id_idx(id) + 1, SHM_STAT);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	q = q_shmctl(-1, IPC_STAT);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	q = q_shmctl(id, 12345);
	assert_int_equal(t_ret(t, &a, &q), -EINVAL);
	/* IPC_SET: owner or CAP_SYS_ADMIN; uid -1 is EINVAL */
	q = q_shmctl(id, IPC_SET);
	q.set = (struct krg_ipc_setbuf){ .uid = 2000, .gid = 200, .mode = 0644 | SHM_DEST };
	assert_int_equal(t_ret(t, &b, &q), -EPERM);
	t->now += 3 * T_SEC;
	assert_int_equal(t_ret(t, &a, &q), 0);
	struct krg_ipc_shm_stat s = t_stat(t, &b, id);
	assert_int_equal(s.perm.uid, 2000);
	assert_int_equal(s.perm.cuid, 1000);
	assert_int_equal(s.perm.mode, 0644);                   /* only the 9 bits */
	assert_int_equal(s.ctime, (int64_t)(T_NOW / T_SEC) + 3);
	q.set.uid = UINT32_MAX;
	assert_int_equal(t_ret(t, &root, &q), -EINVAL);
	/* SHM_LOCK: owner, creator or CAP_IPC_LOCK */
	struct krg_ipc_caller c = who(3000, 300, 30);
	q = q_shmctl(id, SHM_LOCK);
	assert_int_equal(t_ret(t, &c, &q), -EPERM);
	assert_int_equal(t_ret(t, &a, &q), 0);                 /* the creator */
	assert_int_equal(t_stat(t, &b, id).perm.mode, 0644 | SHM_LOCKED);
	c.cred.caps = KRG_IPC_CAP_IPC_LOCK;
	q = q_shmctl(id, SHM_UNLOCK);
	assert_int_equal(t_ret(t, &c, &q), 0);
	assert_int_equal(t_stat(t, &b, id).perm.mode, 0644);
	/* IPC_INFO and SHM_INFO */
	struct krg_ipc_reply r;
	q = q_shmctl(0, IPC_INFO);
	assert_int_equal(t_call(t, &a, &q, NULL, &r), KRG_IPC_DONE);
	assert_int_equal(r.ret, krg_ipc_id_idx(id));
	assert_int_equal(r.out, KRG_IPC_OUT_SHMINFO);
	assert_int_equal(r.shminfo.shmmin, 1);
	assert_int_equal(r.shminfo.shmmni, t->lim.shmmni);
	assert_int_equal(r.shminfo.shmseg, t->lim.shmmni);
	assert_true(r.shminfo.shmmax == t->lim.shmmax && r.shminfo.shmall == t->lim.shmall);
	q = q_shmctl(0, SHM_INFO);
	assert_int_equal(t_call(t, &a, &q, NULL, &r), KRG_IPC_DONE);
	assert_int_equal(r.out, KRG_IPC_OUT_SHM_INFO);
	assert_int_equal(r.shm_info.used_ids, 1);
	assert_int_equal(r.shm_info.shm_tot, 4);               /* 3 pages + 1 byte */
	t_free(t);
}

static void test_export_import(void **state)
{
	struct t *t = t_new(), *t2 = t_new();
	struct krg_ipc_caller a = who(1000, 100, 10);
	struct krg_ipc_req q = q_shmget(0x99, 5000, IPC_CREAT | 0660);
	int32_t id = (int32_t)t_ret(t, &a, &q);
	q = q_shmat(id, 0);
	assert_int_equal(t_ret(t, &a, &q), 0);
	assert_int_equal(t_ret(t, &a, &q), 0);
	q = q_shmctl(id, IPC_RMID);
	assert_int_equal(t_ret(t, &a, &q), 0);                 /* marked, 2 attached */
	struct krg_ipc_export x;
	assert_int_equal(krg_ipc_engine_export(t->e, KRG_IPC_SHM, id, &x), 0);
	assert_int_equal(x.segsz, 5000);
	assert_int_equal(x.nattch, 2);
	assert_int_equal(x.shm_flags, SHM_DEST);
	assert_int_equal(krg_ipc_engine_import(t2->e, &x), 0);
	assert_int_equal(krg_ipc_engine_import(t2->e, &x), -EBUSY);
	struct krg_ipc_shm_stat s = t_stat(t2, &a, id);
	assert_int_equal(s.segsz, 5000);
	assert_int_equal(s.nattch, 2);
	assert_int_equal(s.perm.mode, 0660 | SHM_DEST);
	/* the imported one still dies at its last detach */
	q = q_shmdt(id);
	assert_int_equal(t_ret(t2, &a, &q), 0);
	assert_int_equal(t_ret(t2, &a, &q), 0);
	assert_int_equal(krg_ipc_engine_drop(t2->e, KRG_IPC_SHM, id, -EIDRM), -EINVAL);
	/* refused: size 0, unknown flags, SHM_DEST with no one attached */
	struct krg_ipc_export bad = x;
	bad.segsz = 0;
	assert_int_equal(krg_ipc_engine_import(t2->e, &bad), -EINVAL);
	bad = x;
	bad.shm_flags = 0x40000;
	assert_int_equal(krg_ipc_engine_import(t2->e, &bad), -EINVAL);
	bad = x;
	bad.nattch = 0;
	assert_int_equal(krg_ipc_engine_import(t2->e, &bad), -EINVAL);
	krg_ipc_export_release(&x);
	assert_int_equal(krg_ipc_engine_drop(t->e, KRG_IPC_SHM, id, -EIDRM), 0);
	t_free(t);
	t_free(t2);
}

/* ---- the same sequence on this kernel and on the engine ------------------ */

#define NSTEPS 16

/* Runs the sequence on the kernel in a fresh IPC namespace (a child):
 * ret[i] is the return value or -errno of step i; nattch/mode after. */
struct kres {
	int64_t ret[NSTEPS];
	uint64_t nattch[NSTEPS];
	uint32_t mode[NSTEPS];
	uint64_t segsz[NSTEPS];
};

static struct kres *mmap_shared_kres(void)
{
	struct kres *k = mmap(NULL, sizeof *k, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(k != MAP_FAILED);
	memset(k, 0, sizeof *k);
	return k;
}

static int64_t kr(long r) { return r < 0 ? -errno : r; }

static void kernel_seq(struct kres *k)
{
	struct shmid_ds ds;
	struct shminfo info;
	int id, n = 0;
	void *at[2];
#define STATK() do { memset(&ds, 0, sizeof ds); \
	if (shmctl(id, IPC_STAT, &ds) == 0) { k->nattch[n] = ds.shm_nattch; \
	k->mode[n] = ds.shm_perm.mode; k->segsz[n] = ds.shm_segsz; } } while (0)
	k->ret[n++] = kr(shmget(IPC_PRIVATE, 0, 0600));
	k->ret[n] = kr(id = shmget(0x1234, 10000, IPC_CREAT | 0640)); STATK(); n++;
	k->ret[n++] = kr(shmget(0x1234, 10000, IPC_CREAT | IPC_EXCL | 0600));
	k->ret[n++] = kr(shmget(0x1234, 10001, 0));
	k->ret[n++] = kr(shmget(0x1234, 0, 0));
	k->ret[n++] = kr(shmget(0x4321, 100, 0));
	at[0] = shmat(id, NULL, 0);
	k->ret[n] = at[0] == (void *)-1 ? -errno : 0; STATK(); n++;
	at[1] = shmat(id, NULL, SHM_RDONLY);
	k->ret[n] = at[1] == (void *)-1 ? -errno : 0; STATK(); n++;
	k->ret[n] = kr(shmctl(id, SHM_LOCK, NULL)); STATK(); n++;
	k->ret[n] = kr(shmctl(id, SHM_UNLOCK, NULL)); STATK(); n++;
	k->ret[n] = kr(shmctl(id, IPC_RMID, NULL)); STATK(); n++;
	k->ret[n++] = kr(shmget(0x1234, 0, 0));
	k->ret[n] = kr(shmdt(at[0])); STATK(); n++;
	k->ret[n++] = kr(shmctl(0, IPC_INFO, (struct shmid_ds *)&info));
	k->ret[n++] = kr(shmdt(at[1]));
	k->ret[n++] = kr(shmctl(id, IPC_STAT, &ds));
#undef STATK
}

static void engine_seq(struct kres *k, int32_t kid)
{
	struct t *t = t_new();
	struct krg_ipc_caller c = root_c(1);
	int n = 0;
	int32_t id;
	struct krg_ipc_req q;
#define E(req) (q = (req), t_ret(t, &c, &q))
#define STATE() do { q = q_shmctl(id, IPC_STAT); struct krg_ipc_reply r; \
	t_call(t, &c, &q, NULL, &r); if (r.ret == 0) { k->nattch[n] = r.shm.nattch; \
	k->mode[n] = r.shm.perm.mode; k->segsz[n] = r.shm.segsz; } } while (0)
	k->ret[n++] = E(q_shmget(IPC_PRIVATE, 0, 0600));
	q = q_shmget(0x1234, 10000, IPC_CREAT | 0640);
	q.id = kid;                                        /* the kernel's id, as the service would */
	k->ret[n] = id = (int32_t)t_ret(t, &c, &q); STATE(); n++;
	k->ret[n++] = E(q_shmget(0x1234, 10000, IPC_CREAT | IPC_EXCL | 0600));
	k->ret[n++] = E(q_shmget(0x1234, 10001, 0));
	k->ret[n++] = E(q_shmget(0x1234, 0, 0));
	k->ret[n++] = E(q_shmget(0x4321, 100, 0));
	k->ret[n] = E(q_shmat(id, 0)); STATE(); n++;
	k->ret[n] = E(q_shmat(id, SHM_RDONLY)); STATE(); n++;
	k->ret[n] = E(q_shmctl(id, SHM_LOCK)); STATE(); n++;
	k->ret[n] = E(q_shmctl(id, SHM_UNLOCK)); STATE(); n++;
	k->ret[n] = E(q_shmctl(id, IPC_RMID)); STATE(); n++;
	k->ret[n++] = E(q_shmget(0x1234, 0, 0));
	k->ret[n] = E(q_shmdt(id)); STATE(); n++;
	k->ret[n++] = E(q_shmctl(0, IPC_INFO));
	k->ret[n++] = E(q_shmdt(id));
	k->ret[n++] = E(q_shmctl(id, IPC_STAT));
#undef E
#undef STATE
	t_free(t);
}

static void test_against_kernel(void **state)
{
	if (geteuid() != 0)
		fail_msg("needs root (a fresh IPC namespace)");
	struct kres *k = mmap_shared_kres();
	pid_t p = fork();
	if (p == 0) {
		if (unshare(CLONE_NEWIPC) < 0)
			_exit(1);
		kernel_seq(k);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(p, &st, 0), p);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct kres e = { 0 };
	engine_seq(&e, (int32_t)k->ret[1]);
	for (int i = 0; i < NSTEPS; i++) {
		if (e.ret[i] != k->ret[i] || e.nattch[i] != k->nattch[i] || e.mode[i] != k->mode[i] ||
				e.segsz[i] != k->segsz[i])
			fail_msg("step %d: kernel ret %lld nattch %llu mode %o size %llu; engine ret %lld "
					"nattch %llu mode %o size %llu", i, (long long)k->ret[i],
					(unsigned long long)k->nattch[i], k->mode[i],
					(unsigned long long)k->segsz[i], (long long)e.ret[i],
					(unsigned long long)e.nattch[i], e.mode[i], (unsigned long long)e.segsz[i]);
	}
}

/* The kernel structs, read back through glibc's own (x86_64 layouts). */
static void test_abi(void **state)
{
	struct krg_ipc_reply r = { .out = KRG_IPC_OUT_SHM_STAT };
	r.shm.perm = (struct krg_ipc_perm){ .key = 0x42, .uid = 1, .gid = 2, .cuid = 3, .cgid = 4,
		.mode = 0640 | SHM_DEST, .seq = 7 };
	r.shm.segsz = 123456;
	r.shm.atime = 11, r.shm.dtime = 12, r.shm.ctime = 13;
	r.shm.cpid = 21, r.shm.lpid = 22, r.shm.nattch = 3;
	struct shmid_ds d;
	assert_int_equal(sizeof d, KRG_IPC_ABI_SHMID_DS_SIZE);
	assert_int_equal(krg_ipc_abi_reply_out(&r, &d, sizeof d), sizeof d);
	assert_int_equal(d.shm_perm.__key, 0x42);
	assert_int_equal(d.shm_perm.uid, 1);
	assert_int_equal(d.shm_perm.cgid, 4);
	assert_int_equal(d.shm_perm.mode, 0640 | SHM_DEST);
	assert_int_equal(d.shm_perm.__seq, 7);
	assert_int_equal(d.shm_segsz, 123456);
	assert_int_equal(d.shm_atime, 11);
	assert_int_equal(d.shm_dtime, 12);
	assert_int_equal(d.shm_ctime, 13);
	assert_int_equal(d.shm_cpid, 21);
	assert_int_equal(d.shm_lpid, 22);
	assert_int_equal(d.shm_nattch, 3);
	assert_int_equal(krg_ipc_abi_reply_out(&r, &d, sizeof d - 1), 0);
	struct krg_ipc_setbuf sb;
	d.shm_perm.uid = 99, d.shm_perm.gid = 98, d.shm_perm.mode = 0600;
	krg_ipc_abi_shm_setbuf(&d, &sb);
	assert_int_equal(sb.uid, 99);
	assert_int_equal(sb.gid, 98);
	assert_int_equal(sb.mode, 0600);
	r.out = KRG_IPC_OUT_SHMINFO;
	r.shminfo = (struct krg_ipc_shminfo){ 1000, 1, 4096, 4096, 77 };
	struct shminfo si;
	assert_int_equal(sizeof si, KRG_IPC_ABI_SHMINFO_SIZE);
	assert_int_equal(krg_ipc_abi_reply_out(&r, &si, sizeof si), sizeof si);
	assert_int_equal(si.shmmax, 1000);
	assert_int_equal(si.shmmin, 1);
	assert_int_equal(si.shmmni, 4096);
	assert_int_equal(si.shmseg, 4096);
	assert_int_equal(si.shmall, 77);
	r.out = KRG_IPC_OUT_SHM_INFO;
	r.shm_info = (struct krg_ipc_shm_info){ 5, 6, 7, 8, 9, 10 };
	struct shm_info sh;
	assert_int_equal(sizeof sh, KRG_IPC_ABI_SHM_INFO_SIZE);
	assert_int_equal(krg_ipc_abi_reply_out(&r, &sh, sizeof sh), sizeof sh);
	assert_int_equal(sh.used_ids, 5);
	assert_int_equal(sh.shm_tot, 6);
	assert_int_equal(sh.shm_rss, 7);
	assert_int_equal(sh.shm_swp, 8);
	assert_int_equal(sh.swap_attempts, 9);
	assert_int_equal(sh.swap_successes, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shmget),
		cmocka_unit_test(test_attach_rmid),
		cmocka_unit_test(test_shmctl),
		cmocka_unit_test(test_export_import),
		cmocka_unit_test(test_against_kernel),
		cmocka_unit_test(test_abi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
