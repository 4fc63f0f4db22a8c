/* msgctl01 — IPC_SET changes owner, mode (low 9 bits only) and
 * msg_qbytes and stamps msg_ctime; the creator keeps its rights after
 * giving the queue away; a larger msg_qbytes lets a blocked sender in;
 * IPC_RMID removes the queue. Roles: the creator sets, the peer checks
 * what it sees. */
#include "conf.h"

static int peer(key_t key)
{
	int id, sem;
	if (conf_peer_start(key, 1, &id, &sem) < 0)
		return 1;
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "peer IPC_STAT");
	CHECK(ds.msg_perm.uid == 4321 && ds.msg_perm.gid == 8765, "peer sees owner %u:%u", ds.msg_perm.uid, ds.msg_perm.gid);
	CHECK((ds.msg_perm.mode & 0777) == 0660, "peer sees mode %o", ds.msg_perm.mode & 0777);
	CHECK(ds.msg_qbytes == 100, "peer sees qbytes %lu", (unsigned long)ds.msg_qbytes);
	struct sembuf up = { 0, 1, 0 };
	CHECK_OK(semop(sem, &up, 1), "peer done");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("msgctl01", 30);
	key_t key = conf_key(12);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	int sem = conf_track_sem(CHECK_OK(semget(key, 1, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	time_t c0 = ds.msg_ctime;
	sleep(1);
	ds.msg_perm.uid = 4321;
	ds.msg_perm.gid = 8765;
	ds.msg_perm.mode = 01000 | 0660;
	ds.msg_qbytes = 100;
	CHECK_OK(msgctl(id, IPC_SET, &ds), "IPC_SET");
	memset(&ds, 0, sizeof ds);
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT after IPC_SET");
	CHECK(ds.msg_perm.uid == 4321 && ds.msg_perm.gid == 8765, "owner %u:%u", ds.msg_perm.uid, ds.msg_perm.gid);
	CHECK(ds.msg_perm.cuid == geteuid() && ds.msg_perm.cgid == getegid(), "creator unchanged");
	CHECK((ds.msg_perm.mode & 0777) == 0660 && !(ds.msg_perm.mode & 01000), "mode %o", ds.msg_perm.mode);
	CHECK(ds.msg_qbytes == 100, "qbytes %lu", (unsigned long)ds.msg_qbytes);
	CHECK(ds.msg_ctime > c0, "ctime moved (%ld -> %ld)", (long)c0, (long)ds.msg_ctime);
	struct sembuf up = { 0, 1, 0 };
	CHECK_OK(semop(sem, &up, 1), "tell the peer");
	conf_wait_semctl(sem, 0, GETVAL, 2);
	conf_wait(p, "peer");
	/* a blocked sender gets in when qbytes grows */
	static struct conf_msg m = { .mtype = 1 };
	CHECK_OK(msgsnd(id, &m, 100, IPC_NOWAIT), "fill 100 bytes");
	fflush(stdout);
	pid_t s = fork();
	if (s == 0) {
		conf_owner = 0;
		_exit(msgsnd(id, &m, 50, 0) == 0 ? 0 : 1);
	}
	conf_msleep(200);
	CHECK(waitpid(s, NULL, WNOHANG) == 0, "the sender did not wait");
	ds.msg_qbytes = 200;
	CHECK_OK(msgctl(id, IPC_SET, &ds), "IPC_SET qbytes 200 (creator, not owner)");
	conf_wait(s, "the blocked sender");
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	CHECK(ds.msg_qnum == 2 && ds.__msg_cbytes == 150, "qnum %lu cbytes %lu", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes);
	CHECK_OK(msgctl(id, IPC_RMID, NULL), "IPC_RMID");
	CHECK_ERR(msgctl(id, IPC_STAT, &ds), EINVAL, "IPC_STAT after IPC_RMID");
	CHECK_ERR(msgget(key, 0), ENOENT, "the key is free");
	return conf_done();
}
