/* msgrcv01 — a receiver blocked in msgrcv is woken by a msgsnd from
 * another process and gets that message whole; a receiver waiting for a
 * type is not woken by other types. Roles: the creator waits, the peer
 * sends (after the creator is known to wait: it tells by a semaphore). */
#include "conf.h"

static int peer(key_t key)
{
	/* the creator raises the semaphore right before blocking */
	int id, sem;
	if (conf_peer_start(key, 1, &id, &sem) < 0)
		return 1;
	conf_msleep(200);
	struct conf_msg m = { .mtype = 3, .mtext = "not for you" };
	CHECK_OK(msgsnd(id, &m, 12, 0), "peer sends type 3");
	conf_msleep(100);
	m.mtype = 7;
	strcpy(m.mtext, "wake up");
	CHECK_OK(msgsnd(id, &m, 8, 0), "peer sends type 7");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("msgrcv01", 30);
	key_t key = conf_key(7);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	int sem = conf_track_sem(CHECK_OK(semget(key, 1, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	static struct conf_msg m;
	CHECK_ERR(msgrcv(id, &m, sizeof m.mtext, 7, IPC_NOWAIT), ENOMSG, "nothing yet");
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	struct sembuf up = { 0, 1, 0 };
	CHECK_OK(semop(sem, &up, 1), "tell the peer");
	double t0 = conf_now();
	ssize_t n = CHECK_OK(msgrcv(id, &m, sizeof m.mtext, 7, 0), "blocking msgrcv");
	CHECK(conf_now() - t0 > 0.2, "msgrcv returned before anything was sent");
	CHECK(n == 8 && m.mtype == 7 && !strcmp(m.mtext, "wake up"), "got %zd bytes type %ld '%.8s'", n, m.mtype, m.mtext);
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	CHECK(ds.msg_qnum == 1, "the type-3 message is still queued (qnum %lu)", (unsigned long)ds.msg_qnum);
	CHECK(ds.msg_lrpid == getpid(), "msg_lrpid is the receiver");
	conf_wait(p, "peer");
	return conf_done();
}
