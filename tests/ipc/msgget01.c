/* msgget01 — msgget creates and finds queues: IPC_PRIVATE is always new,
 * a key is created once with IPC_CREAT and found again, the mode and
 * owner are the creator's, IPC_CREAT|IPC_EXCL on an existing key is
 * EEXIST, a missing key without IPC_CREAT is ENOENT. Roles: the creator
 * makes KEY, the peer finds it and checks it is the same queue. The peer
 * sends only once the creator said "go" (type 2) after checking that its
 * new queue is empty: a peer that finds the key in the moment between
 * msgget and IPC_STAT must not make the creator see a message there (a
 * window of microseconds on one machine, of a few calls' time when each
 * is served across nodes). */
#include "conf.h"

static int peer(key_t key)
{
	int id = conf_find_msq(key);
	if (id < 0)
		return 1;
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "peer IPC_STAT");
	CHECK(ds.msg_perm.__key == key, "peer sees key 0x%x, want 0x%x", (unsigned)ds.msg_perm.__key, (unsigned)key);
	CHECK((ds.msg_perm.mode & 0777) == 0640, "peer sees mode %o", ds.msg_perm.mode & 0777);
	CHECK(msgget(key, IPC_CREAT | 0600) == id, "IPC_CREAT on an existing key gives its id");
	CHECK_ERR(msgget(key, IPC_CREAT | IPC_EXCL | 0600), EEXIST, "IPC_CREAT|IPC_EXCL on an existing key");
	struct conf_msg m;
	CHECK(msgrcv(id, &m, sizeof m.mtext, 2, 0) == 3, "peer msgrcv the creator's go");
	m.mtype = 1;
	snprintf(m.mtext, sizeof m.mtext, "from-peer");
	CHECK_OK(msgsnd(id, &m, 10, 0), "peer msgsnd");
	return conf_failed ? 1 : 0;
}

static void creator(key_t key, int fork_peer)
{
	int a = conf_track_msq(CHECK_OK(msgget(IPC_PRIVATE, 0600), "msgget(IPC_PRIVATE)"));
	int b = conf_track_msq(CHECK_OK(msgget(IPC_PRIVATE, 0600), "msgget(IPC_PRIVATE) again"));
	CHECK(a != b, "two IPC_PRIVATE queues share id %d", a);
	CHECK_ERR(msgget(key, 0600), ENOENT, "missing key without IPC_CREAT");
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0640), "msgget(key, IPC_CREAT|IPC_EXCL)"));
	CHECK(msgget(key, 0) == id, "msgget(key, 0) finds the queue");
	CHECK(msgget(key, 0640) == id, "msgget(key, 0640) finds the queue");
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	CHECK((ds.msg_perm.mode & 0777) == 0640, "mode %o, want 640", ds.msg_perm.mode & 0777);
	CHECK(ds.msg_perm.uid == geteuid() && ds.msg_perm.cuid == geteuid(), "owner/creator uid");
	CHECK(ds.msg_perm.gid == getegid() && ds.msg_perm.cgid == getegid(), "owner/creator gid");
	CHECK(ds.msg_qnum == 0 && ds.msg_cbytes == 0, "a new queue is empty");
	CHECK(ds.msg_lspid == 0 && ds.msg_lrpid == 0 && ds.msg_stime == 0 && ds.msg_rtime == 0, "new queue's pids/times are 0");
	CHECK(ds.msg_ctime > 0, "ctime set");
	pid_t p = fork_peer ? conf_fork_peer(peer, key) : -1;
	struct conf_msg m = { .mtype = 2, .mtext = "go" };
	CHECK_OK(msgsnd(id, &m, 3, 0), "msgsnd the go");
	ssize_t n = CHECK_OK(msgrcv(id, &m, sizeof m.mtext, 1, 0), "msgrcv the peer's message");
	CHECK(n == 10 && !strcmp(m.mtext, "from-peer"), "got %zd bytes '%.10s'", n, m.mtext);
	conf_wait(p, "peer");
}

int main(int argc, char **argv)
{
	conf_init("msgget01", 30);
	key_t key = conf_key(1);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	creator(key, role == ROLE_BOTH);
	return conf_done();
}
