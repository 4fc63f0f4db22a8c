/* msgsnd02 — msgsnd's errors: EINVAL (negative or unknown id, mtype < 1,
 * msgsz > msgmax), EFAULT (an unreadable message), EACCES (nobody on a
 * 0644 queue), EAGAIN (a full queue with IPC_NOWAIT, by bytes and by
 * message count), EIDRM (a sender blocked on a full queue when the queue
 * is removed). Roles: the creator fills the queue and blocks in msgsnd;
 * the peer waits for the queue to be full and removes it. */
#include <sys/mman.h>
#include "conf.h"

static key_t gkey;

static void as_nobody(void *arg)
{
	int id = *(int *)arg;
	struct conf_msg m = { .mtype = 1 };
	CHECK_ERR(msgsnd(id, &m, 1, IPC_NOWAIT), EACCES, "nobody msgsnd on 0644");
}

static int peer(key_t key)
{
	int id = conf_find_msq(key);
	if (id < 0)
		return 1;
	/* full = the creator's last msgsnd is blocked: wait for the bytes */
	struct msqid_ds ds;
	for (int i = 0; i < 2000; i++) {
		if (msgctl(id, IPC_STAT, &ds) == 0 && ds.__msg_cbytes == ds.msg_qbytes)
			break;
		conf_msleep(5);
	}
	conf_msleep(200);      /* let it block */
	CHECK_OK(msgctl(id, IPC_RMID, NULL), "peer IPC_RMID");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("msgsnd02", 30);
	gkey = conf_key(5);
	enum conf_role role = conf_role(argc, argv, &gkey);
	if (role == ROLE_PEER)
		return peer(gkey);
	static struct conf_msg m = { .mtype = 1 };
	struct msginfo mi;
	CHECK_OK(msgctl(0, IPC_INFO, (struct msqid_ds *)&mi), "IPC_INFO");
	int id = conf_track_msq(CHECK_OK(msgget(gkey, IPC_CREAT | IPC_EXCL | 0644), "msgget"));
	CHECK_ERR(msgsnd(-1, &m, 1, 0), EINVAL, "negative id");
	int bad = msgget(IPC_PRIVATE, 0600);
	msgctl(bad, IPC_RMID, NULL);
	CHECK_ERR(msgsnd(bad, &m, 1, 0), EINVAL, "removed id");
	m.mtype = 0;
	CHECK_ERR(msgsnd(id, &m, 1, 0), EINVAL, "mtype 0");
	m.mtype = -5;
	CHECK_ERR(msgsnd(id, &m, 1, 0), EINVAL, "mtype < 0");
	m.mtype = 1;
	CHECK_ERR(msgsnd(id, &m, (size_t)mi.msgmax + 1, 0), EINVAL, "msgsz > msgmax");
	CHECK_ERR(msgsnd(id, &m, (size_t)-1, 0), EINVAL, "msgsz < 0");
	void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_ERR(msgsnd(id, none, 1, 0), EFAULT, "unreadable mtype");
	CHECK_ERR(msgsnd(id, NULL, 1, 0), EFAULT, "NULL message");
	conf_as_nobody(as_nobody, &id);
	/* fill by bytes */
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	size_t chunk = (size_t)mi.msgmax, left = ds.msg_qbytes;
	while (left >= chunk) {
		CHECK_OK(msgsnd(id, &m, chunk, IPC_NOWAIT), "fill");
		left -= chunk;
	}
	if (left)
		CHECK_OK(msgsnd(id, &m, left, IPC_NOWAIT), "fill the rest");
	CHECK_ERR(msgsnd(id, &m, 1, IPC_NOWAIT), EAGAIN, "full queue, IPC_NOWAIT");
	/* by count: a queue of qbytes 2 holds two empty messages */
	int small = conf_track_msq(CHECK_OK(msgget(IPC_PRIVATE, 0600), "small queue"));
	CHECK_OK(msgctl(small, IPC_STAT, &ds), "IPC_STAT small");
	ds.msg_qbytes = 2;
	CHECK_OK(msgctl(small, IPC_SET, &ds), "qbytes 2");
	CHECK_OK(msgsnd(small, &m, 0, IPC_NOWAIT), "empty 1");
	CHECK_OK(msgsnd(small, &m, 0, IPC_NOWAIT), "empty 2");
	CHECK_ERR(msgsnd(small, &m, 0, IPC_NOWAIT), EAGAIN, "a third message exceeds the count");
	/* blocked, then removed */
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, gkey) : -1;
	CHECK_ERR(msgsnd(id, &m, 1, 0), EIDRM, "blocked sender when the queue goes");
	conf_wait(p, "peer");
	return conf_done();
}
