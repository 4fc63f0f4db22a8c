/* msgsnd01 — messages arrive whole and in order: sizes 0, 1 and msgmax,
 * every byte value, several types; the queue's counters and stamps
 * (msg_qnum, msg_cbytes, msg_lspid, msg_stime, then msg_lrpid,
 * msg_rtime) follow. Roles: the creator sends, the peer receives and
 * checks, then sends back a digest. */
#include "conf.h"

#define NMSG 8

static size_t size_of(int i, size_t max)
{
	/* 13394 bytes with msgmax 8192: all fit in a default queue. */
	static const size_t s[NMSG] = { 0, 1, 2, 100, 1000, 4096, 0, 3 };
	return i == 6 ? max : s[i];
}

static void fill(struct conf_msg *m, int i, size_t n)
{
	m->mtype = i + 1;
	for (size_t j = 0; j < n; j++)
		m->mtext[j] = (char)(j * 7 + i);
}

static size_t msgmax(void)
{
	struct msginfo mi;
	if (msgctl(0, IPC_INFO, (struct msqid_ds *)&mi) < 0 || mi.msgmax <= 0 || mi.msgmax > 8192)
		return 8192;
	return (size_t)mi.msgmax;
}

static int peer(key_t key)
{
	int id = conf_find_msq(key);
	if (id < 0)
		return 1;
	size_t max = msgmax();
	static struct conf_msg m, want;
	int good = 0;
	/* The creator checks the counters first, then says go. */
	CHECK(msgrcv(id, &m, sizeof m.mtext, 200, 0) == 0, "peer: the go message");
	for (int i = 0; i < NMSG; i++) {
		ssize_t n = msgrcv(id, &m, sizeof m.mtext, 0, 0);
		size_t sz = size_of(i, max);
		fill(&want, i, sz);
		CHECK(n == (ssize_t)sz, "message %d: %zd bytes, want %zu", i, n, sz);
		CHECK(m.mtype == want.mtype, "message %d: type %ld, want %ld", i, m.mtype, want.mtype);
		if (n == (ssize_t)sz && !memcmp(m.mtext, want.mtext, sz))
			good++;
		else
			CHECK(0, "message %d: contents differ", i);
	}
	struct conf_msg back = { .mtype = 100 };
	snprintf(back.mtext, sizeof back.mtext, "%d", good);
	CHECK_OK(msgsnd(id, &back, strlen(back.mtext) + 1, 0), "peer sends the digest");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("msgsnd01", 30);
	key_t key = conf_key(4);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	size_t max = msgmax();
	static struct conf_msg m;
	size_t total = 0;
	time_t t0 = time(NULL);
	for (int i = 0; i < NMSG; i++) {
		size_t sz = size_of(i, max);
		fill(&m, i, sz);
		CHECK_OK(msgsnd(id, &m, sz, 0), "msgsnd");
		total += sz;
	}
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	CHECK(ds.msg_qnum == NMSG, "msg_qnum %lu, want %d", (unsigned long)ds.msg_qnum, NMSG);
	CHECK(ds.__msg_cbytes == total, "msg_cbytes %lu, want %zu", (unsigned long)ds.__msg_cbytes, total);
	CHECK(ds.msg_lspid == getpid(), "msg_lspid %d, want %d", ds.msg_lspid, getpid());
	CHECK(ds.msg_stime >= t0 && ds.msg_stime <= time(NULL), "msg_stime %ld", (long)ds.msg_stime);
	CHECK(ds.msg_lrpid == 0 && ds.msg_rtime == 0, "nothing received yet");
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	struct conf_msg go = { .mtype = 200 };
	CHECK_OK(msgsnd(id, &go, 0, 0), "send go");
	ssize_t n = CHECK_OK(msgrcv(id, &m, sizeof m.mtext, 100, 0), "receive the digest");
	CHECK(n > 0 && atoi(m.mtext) == NMSG, "the peer got %s of %d messages intact", n > 0 ? m.mtext : "?", NMSG);
	conf_wait(p, "peer");
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	CHECK(ds.msg_qnum == 0 && ds.__msg_cbytes == 0, "queue empty at the end");
	CHECK(ds.msg_lrpid == getpid(), "msg_lrpid is the last receiver (%d)", ds.msg_lrpid);
	CHECK(ds.msg_lspid != getpid() || role == ROLE_CREATOR, "msg_lspid is the last sender, the peer");
	CHECK(ds.msg_rtime >= t0, "msg_rtime set");
	return conf_done();
}
