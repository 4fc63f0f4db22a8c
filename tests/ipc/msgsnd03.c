/* msgsnd03 — a sender blocked on a full queue is let in by a receiver in
 * another process: its message arrives, after the ones before it, and
 * nothing is lost or doubled. Roles: the creator fills the queue and
 * sends more (blocking); the peer receives everything and reports. */
#include "conf.h"

#define EXTRA 50

static int peer(key_t key)
{
	int id = conf_find_msq(key);
	if (id < 0)
		return 1;
	struct msqid_ds ds;
	for (int i = 0; i < 2000; i++) {
		if (msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_qnum >= 4)
			break;
		conf_msleep(5);
	}
	conf_msleep(200);      /* the creator is now blocked */
	static struct conf_msg m;
	long next = 1;
	int bad = 0;
	for (;;) {
		ssize_t n = msgrcv(id, &m, sizeof m.mtext, -1000, 0);
		if (n < 0) {
			CHECK(0, "peer msgrcv: %s", strerror(errno));
			return 1;
		}
		if (m.mtype == 999)
			break;
		if (atol(m.mtext) != next)
			bad++;
		next++;
	}
	CHECK(bad == 0, "%d messages out of order", bad);
	struct conf_msg r = { .mtype = 1000 };
	snprintf(r.mtext, sizeof r.mtext, "%ld", next - 1);
	CHECK_OK(msgsnd(id, &r, strlen(r.mtext) + 1, 0), "peer report");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("msgsnd03", 30);
	key_t key = conf_key(6);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	ds.msg_qbytes = 4 * 4000;
	CHECK_OK(msgctl(id, IPC_SET, &ds), "IPC_SET qbytes");
	static struct conf_msg m = { .mtype = 1 };
	long seq = 0;
	for (int i = 0; i < 4; i++) {
		snprintf(m.mtext, sizeof m.mtext, "%ld", ++seq);
		CHECK_OK(msgsnd(id, &m, 4000, IPC_NOWAIT), "fill");
	}
	snprintf(m.mtext, sizeof m.mtext, "%ld", seq + 1);
	CHECK_ERR(msgsnd(id, &m, 4000, IPC_NOWAIT), EAGAIN, "full");
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	double t0 = conf_now();
	for (int i = 0; i < EXTRA; i++) {
		snprintf(m.mtext, sizeof m.mtext, "%ld", ++seq);
		CHECK_OK(msgsnd(id, &m, 4000, 0), "blocking msgsnd");
		if (i == 0)
			CHECK(conf_now() - t0 > 0.1, "the first extra msgsnd did not wait for room");
	}
	struct conf_msg end = { .mtype = 999 };
	CHECK_OK(msgsnd(id, &end, 0, 0), "end marker");
	ssize_t n = CHECK_OK(msgrcv(id, &m, sizeof m.mtext, 1000, 0), "the peer's report");
	CHECK(n > 0 && atol(m.mtext) == seq, "peer got %s messages, sent %ld", n > 0 ? m.mtext : "?", seq);
	conf_wait(p, "peer");
	return conf_done();
}
