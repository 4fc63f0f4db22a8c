/* msgrcv04 — receivers blocked in msgrcv fail with EIDRM when another
 * process removes the queue; later calls on the id are EINVAL. Roles:
 * the creator blocks (two threads of waiting: itself and a child); the
 * peer removes the queue once both wait. */
#include "conf.h"

static int peer(key_t key)
{
	int id, sem;
	if (conf_peer_start(key, 2, &id, &sem) < 0)
		return 1;
	conf_msleep(300);
	CHECK_OK(msgctl(id, IPC_RMID, NULL), "peer IPC_RMID");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("msgrcv04", 30);
	key_t key = conf_key(10);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	int sem = conf_track_sem(CHECK_OK(semget(key, 1, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	struct sembuf up = { 0, 1, 0 };
	fflush(stdout);
	pid_t w = fork();
	if (w == 0) {
		conf_owner = 0;
		conf_failed = 0;
		static struct conf_msg m;
		semop(sem, &up, 1);
		CHECK_ERR(msgrcv(id, &m, 100, 0, 0), EIDRM, "second receiver");
		_exit(conf_failed ? 1 : 0);
	}
	static struct conf_msg m;
	CHECK_OK(semop(sem, &up, 1), "tell the peer");
	CHECK_ERR(msgrcv(id, &m, 100, 0, 0), EIDRM, "blocked receiver when the queue goes");
	conf_wait(w, "second receiver");
	CHECK_ERR(msgrcv(id, &m, 100, 0, IPC_NOWAIT), EINVAL, "the removed id");
	conf_wait(p, "peer");
	return conf_done();
}
