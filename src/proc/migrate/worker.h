/* worker.h — the forked parts of a migration: source worker (worker.c)
 * and holder on the target (holder.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "ckpt/ckpt.h"
#include "proc/migrate/mig-int.h"

struct mig_work {
	pid_t pid;
	uint32_t id;
	uid_t uid;
	gid_t gid;
	int wait_read_fd;    /* >= 0: freeze only once a thread waits in read() on it */
	bool migrant_here;   /* a migrant (child of a holder here), not the original */
	uint32_t node;       /* this node */
	int pidfd;           /* of the process krgd checked; the dump fails if it is gone */
	char dir[256];       /* image directory */
};
_Noreturn void mig_worker_main(int sock, const struct mig_work *w);
/* A forked worker or holder: default dispositions for the signals krgd
 * handles, none blocked. */
void mig_child_signals(void);
/* sharedmem.c: 0, or -EBUSY with one line in err naming the mapping and
 * the process of this node that maps the same shared memory object
 * (MAP_SHARED anonymous or memfd) as process pid (cluster id id). */
int mig_shared_mem_check(pid_t pid, uint32_t id, uint32_t node, char *err, size_t errlen);

/* What home's kernel said of a forwarded socket's peer (SO_PEERCRED,
 * SO_PEERGROUPS): the migrant's socketpair end is made with it. */
#define MIG_PEER_GROUPS (MIG_SA_MAX / sizeof(gid_t))
struct mig_peer {
	bool known;             /* else made as nobody, never root */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t groups[MIG_PEER_GROUPS];
};
/* peerpair.c: socketpair(AF_UNIX, type | SOCK_CLOEXEC) whose ends name
 * pe (or nobody) as their peer: pid if it is free here, ids and groups
 * always. 0, or -errno. */
int mig_peer_socketpair(int type, const struct mig_peer *pe, int sv[2]);

struct mig_hold {
	uint32_t id;
	uid_t uid;
	gid_t gid;
	char dir[256];
	size_t n;
	int num[MIG_MAX_PROXIES];
	bool reads[MIG_MAX_PROXIES];
	bool tty[MIG_MAX_PROXIES];          /* these share one pty, made here */
	int stype[MIG_MAX_PROXIES];         /* a socket at home (its type): the migrant gets a socketpair end of that type */
	struct mig_peer peer[MIG_MAX_PROXIES]; /* a socket's peer at home: that end names it */
	unsigned rows, cols;
	size_t nkids;                       /* children left at home: a ghost each (ghost.c) */
	pid_t kid_home[MIG_MAX_KIDS];       /* the child's pid at home */
	pid_t kid_as[MIG_MAX_KIDS];         /* the pid the migrant knows it by: the ghost's, if free here */
	char kid_comm[MIG_MAX_KIDS][16];
	bool kid_ids[MIG_MAX_KIDS];         /* the next three are known (else the migrant's uid/gid) */
	uid_t kid_uid[MIG_MAX_KIDS], kid_suid[MIG_MAX_KIDS];
	gid_t kid_gid[MIG_MAX_KIDS];
	int kid_stop[MIG_MAX_KIDS];         /* stopped at home by this signal, stop not reaped: the ghost stops so too */
	char ghost[512];                    /* the krg-ghost program */
	int isock;                          /* -1, or where the IPC listener goes to krgd (ipc/intercept.h) */
	int fsns;                           /* -1, or the file view it is restored in (fsview/fsview.h) */
	pid_t into;                         /* back home: its deputy's pid, restored into (inplace.c); 0: beside */
	int adopt_fd;                       /* -1, or a sibling's holder has its parent's pid here: our end of
					       the socket to it (adopt.c), which makes our shell and reaps it */
};
_Noreturn void mig_holder_main(int sock, const struct mig_hold *h);

/* dsm_follow.c: the attachments of System V segments of the DSM follow a
 * migrant (docs/dsm.md, "Migration of an attached process"). The restore asks
 * krgd for this node's object of each segment over isock (hooks); after a
 * good restore the userfaultfds it registered go to krgd, which serves
 * them and counts the attaches. */
#define MIG_DSM_MAX_SEGS 64
struct mig_dsm {
	struct ckpt_dsm_hooks hooks;
	int sock;
	size_t nfds;
	int fds[MIG_DSM_MAX_SEGS];   /* the objects krgd gave (open until mig_dsm_done) */
	uint64_t segs[MIG_DSM_MAX_SEGS];
};
/* The hooks for ckpt_restore_opts.dsm; NULL when isock is -1 (no IPC
 * service here: such an image is refused). */
struct ckpt_dsm_hooks *mig_dsm_init(struct mig_dsm *d, int isock);
/* After a good restore: each re-attached mapping to krgd. 0, or -errno
 * (logged): the migration must fail, its mapping would not be served. */
int mig_dsm_hand_over(struct mig_dsm *d);
/* Close what is left (after a failed restore: the userfaultfds too). */
void mig_dsm_done(struct mig_dsm *d);

/* Siblings on one node (adopt.c). The frame carrying an fd (MF_SHELL),
 * and reading a frame that may carry one (*fd: -1 if none). */
int mig_send_fd(int sock, uint8_t type, int fd);
ssize_t mig_recv_frame(int sock, uint8_t *buf, size_t cap, int *fd);
/* The adopter: the children it forked for siblings' holders. */
#define MIG_MAX_ADOPT 16
#define MIG_ADOPT_PIDFD ((size_t)1 << 30)
struct mig_adoptee {
	int fd;      /* the socket to that holder; -1 once it is gone */
	pid_t pid;   /* the shell, then the process restored into it; 0: not asked yet */
	int pidfd;
};
struct mig_adopts {
	size_t n;
	struct mig_adoptee a[MIG_MAX_ADOPT];
};
void mig_adopt_add(struct mig_adopts *a, int fd);
struct pollfd;
size_t mig_adopt_pollfds(struct mig_adopts *a, struct pollfd *pfd, size_t max, size_t *map);
void mig_adopt_ready(struct mig_adopts *a, size_t map_entry, short revents);
/* Until every adopted child ended (its status sent): the adopter's last wait. */
void mig_adopt_linger(struct mig_adopts *a);
/* The adopted one's holder: a shell of the adopter's with pid want (its
 * pid, or -errno); how the process restored into it ended (a wait status;
 * SIGKILL if the adopter does not say within 3 s). */
pid_t mig_adopt_shell(int fd, pid_t want);
int mig_adopt_status(int fd);

/* Back home (inplace.c): what came while trying to restore the process
 * into its deputy, for holder.c when it is restored beside it after all. */
#define MIG_INPLACE_MAX_FRAMES 256
struct mig_inplace_left {
	bool beside;  /* restore it beside the deputy (holder.c goes on), frames f[] first */
	bool go;      /* MF_GO came: its output may go */
	size_t n;
	uint8_t *f[MIG_INPLACE_MAX_FRAMES];
	size_t len[MIG_INPLACE_MAX_FRAMES];
};
/* 0: done (restored in place, or failed and said so): the holder exits;
 * 1: restore it beside the deputy, as for any other node. */
int mig_inplace(int sock, const struct mig_hold *hd, struct mig_inplace_left *left);

void mig_rm_rf(const char *dir);
/* Signals pending on process pid (its own and process-wide): bit s-1 for
 * signal s. */
unsigned long long mig_pending_of(pid_t pid);
/* The signals its own timers send (its POSIX timers', and SIGALRM,
 * SIGVTALRM, SIGPROF for its interval timers), same mask. */
unsigned long long mig_timer_signals(pid_t pid);
/* In the running process pid: fds nums[] become opens of path (O_RDWR,
 * their O_NONBLOCK and close-on-exec kept). 0 or -errno. */
int mig_fd_replace(pid_t pid, const int *nums, size_t n, const char *path);
/* In the running process pid: fd num becomes a copy of our fd (passed
 * through a socket bound at sockpath for the while, which only the
 * process's uid/gid may connect to), its O_NONBLOCK and close-on-exec
 * kept. 0 or -errno. */
int mig_fd_install(pid_t pid, int num, int fd, uid_t uid, gid_t gid, const char *sockpath);
