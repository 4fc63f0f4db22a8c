/* msgrcv03 — type selection: 0 (first), > 0 (first of that type),
 * < 0 (lowest type <= |msgtyp|, first of it), MSG_EXCEPT (first of
 * another type), MSG_NOERROR (truncated to the buffer, the rest lost),
 * MSG_COPY (the n-th message, left in place; needs IPC_NOWAIT, refuses
 * MSG_EXCEPT, ENOMSG past the end). */
#include "conf.h"

static void send(int id, long type, const char *s)
{
	struct conf_msg m = { .mtype = type };
	strcpy(m.mtext, s);
	CHECK_OK(msgsnd(id, &m, strlen(s), 0), "msgsnd");
}

static void recv_is(int id, long typ, int flg, long want_type, const char *want, const char *what)
{
	static struct conf_msg m;
	memset(m.mtext, 0, 64);
	ssize_t n = msgrcv(id, &m, 64, typ, flg | IPC_NOWAIT);
	CHECK(n == (ssize_t)strlen(want) && m.mtype == want_type && !memcmp(m.mtext, want, strlen(want)),
		"%s: got %zd type %ld '%.20s', want type %ld '%s' (%s)", what, n, m.mtype, m.mtext, want_type, want,
		n < 0 ? strerror(errno) : "");
}

int main(int argc, char **argv)
{
	conf_init("msgrcv03", 30);
	key_t key = conf_key(9);
	conf_single_role(argc, argv, &key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	send(id, 5, "five");
	send(id, 3, "three");
	send(id, 7, "seven");
	send(id, 3, "three-b");
	send(id, 1, "one");
	/* MSG_COPY */
	recv_is(id, 2, MSG_COPY, 7, "seven", "MSG_COPY of message 2");
	recv_is(id, 0, MSG_COPY, 5, "five", "MSG_COPY of message 0");
	static struct conf_msg m;
	CHECK_ERR(msgrcv(id, &m, 64, 5, MSG_COPY | IPC_NOWAIT), ENOMSG, "MSG_COPY past the end");
	CHECK_ERR(msgrcv(id, &m, 64, 0, MSG_COPY), EINVAL, "MSG_COPY without IPC_NOWAIT");
	CHECK_ERR(msgrcv(id, &m, 64, 0, MSG_COPY | MSG_EXCEPT | IPC_NOWAIT), EINVAL, "MSG_COPY with MSG_EXCEPT");
	CHECK_ERR(msgrcv(id, &m, 2, 0, MSG_COPY | IPC_NOWAIT), E2BIG, "MSG_COPY into a small buffer");
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	CHECK(ds.msg_qnum == 5, "MSG_COPY took nothing (qnum %lu)", (unsigned long)ds.msg_qnum);
	recv_is(id, 3, 0, 3, "three", "type 3");
	recv_is(id, 5, MSG_EXCEPT, 7, "seven", "MSG_EXCEPT 5");
	recv_is(id, -4, 0, 1, "one", "type -4 (lowest first)");
	recv_is(id, -4, 0, 3, "three-b", "type -4 again");
	CHECK_ERR(msgrcv(id, &m, 64, -4, IPC_NOWAIT), ENOMSG, "type -4, none left");
	CHECK_ERR(msgrcv(id, &m, 64, 4, IPC_NOWAIT), ENOMSG, "type 4");
	/* MSG_NOERROR */
	memset(m.mtext, 0, 16);
	ssize_t n = msgrcv(id, &m, 2, 0, MSG_NOERROR | IPC_NOWAIT);
	CHECK(n == 2 && m.mtype == 5 && !memcmp(m.mtext, "fi", 2) && m.mtext[2] == 0, "MSG_NOERROR: %zd '%.4s'", n, m.mtext);
	CHECK_ERR(msgrcv(id, &m, 64, 0, IPC_NOWAIT), ENOMSG, "the truncated rest is gone");
	/* type 0: first, whatever its type */
	send(id, 9, "nine");
	send(id, 2, "two");
	recv_is(id, 0, 0, 9, "nine", "type 0");
	recv_is(id, 0, 0, 2, "two", "type 0 again");
	return conf_done();
}
