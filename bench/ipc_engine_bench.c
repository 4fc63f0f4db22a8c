/* ipc_engine_bench — what one call costs in the IPC engine (src/ipc),
 * beside the same call on this kernel in the same run: msgsnd+msgrcv of
 * 64 bytes, an uncontended semop pair (P then V), and a waiter parked and
 * completed through the callback. The engine's share of a cluster round
 * trip (~30 us of TCP here, WAVE2.md) is what this shows.
 *
 *   krg-bench-ipc-engine [ITERATIONS]       (prints one line per case) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <time.h>
#include "ipc/ipc_engine.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int completions;
static void on_done(void *data, uint64_t token, struct krg_ipc_reply *r)
{
	(void)data;
	(void)token;
	completions++;
	krg_ipc_reply_release(r);
}

static void line(const char *what, double native, double engine, long n)
{
	printf("%-34s native %7.3f us   engine %7.3f us   engine/native %.2f\n", what, native / n * 1e6,
		engine / n * 1e6, engine / native);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 0) : 200000;
	if (n <= 0) {
		fprintf(stderr, "usage: krg-bench-ipc-engine [ITERATIONS]\n");
		return 2;
	}
	struct krg_ipc_limits lim;
	krg_ipc_limits_default(&lim);
	struct krg_ipc_engine *e = krg_ipc_engine_new(&lim, on_done, NULL);
	struct krg_ipc_caller c = { .cred = { .euid = 0, .egid = 0, .caps = KRG_IPC_CAP_IPC_OWNER }, .pid = 1, .proc_id = 1 };
	struct krg_ipc_reply r;
	char text[64] = "0123456789";

	/* msgsnd + msgrcv */
	struct { long mtype; char t[64]; } m = { 1, "" };
	int kq = msgget(IPC_PRIVATE, 0600);
	if (kq < 0) {
		fprintf(stderr, "krg-bench-ipc-engine: msgget: %s\n", strerror(errno));
		return 1;
	}
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		if (msgsnd(kq, &m, 64, IPC_NOWAIT) < 0 || msgrcv(kq, &m, 64, 0, IPC_NOWAIT) != 64)
			return fprintf(stderr, "native msg failed: %s\n", strerror(errno)), 1;
	}
	double native = now_s() - t0;
	msgctl(kq, IPC_RMID, NULL);
	struct krg_ipc_req g = { .op = KRG_IPC_OP_MSGGET, .id = KRG_IPC_ID_ANY, .key = IPC_PRIVATE, .flags = 0600 };
	krg_ipc_engine_call(e, &c, &g, 1, now_ns(), &r);
	int32_t eq = (int32_t)r.ret;
	struct krg_ipc_req snd = { .op = KRG_IPC_OP_MSGSND, .id = eq, .msgtyp = 1, .msgsz = 64, .text = (uint8_t *)text,
		.text_len = 64, .flags = IPC_NOWAIT };
	struct krg_ipc_req rcv = { .op = KRG_IPC_OP_MSGRCV, .id = eq, .msgsz = 64, .flags = IPC_NOWAIT };
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		krg_ipc_engine_call(e, &c, &snd, 1, now_ns(), &r);
		krg_ipc_engine_call(e, &c, &rcv, 1, now_ns(), &r);
		if (r.ret != 64)
			return fprintf(stderr, "engine msg failed: %ld\n", (long)r.ret), 1;
		krg_ipc_reply_release(&r);
	}
	line("msgsnd+msgrcv 64 B", native, now_s() - t0, n);

	/* semop P then V */
	int ks = semget(IPC_PRIVATE, 1, 0600);
	struct sembuf v = { 0, 1, 0 }, p = { 0, -1, 0 };
	t0 = now_s();
	for (long i = 0; i < n; i++)
		if (semop(ks, &v, 1) < 0 || semop(ks, &p, 1) < 0)
			return fprintf(stderr, "native semop failed: %s\n", strerror(errno)), 1;
	native = now_s() - t0;
	semctl(ks, 0, IPC_RMID);
	struct krg_ipc_req sg = { .op = KRG_IPC_OP_SEMGET, .id = KRG_IPC_ID_ANY, .key = IPC_PRIVATE, .nsems = 1, .flags = 0600 };
	krg_ipc_engine_call(e, &c, &sg, 1, now_ns(), &r);
	int32_t es = (int32_t)r.ret;
	struct krg_ipc_sembuf ev = { 0, 1, 0 }, ep = { 0, -1, 0 };
	struct krg_ipc_req qv = { .op = KRG_IPC_OP_SEMOP, .id = es, .sops = &ev, .nsops = 1 };
	struct krg_ipc_req qp = { .op = KRG_IPC_OP_SEMOP, .id = es, .sops = &ep, .nsops = 1 };
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		krg_ipc_engine_call(e, &c, &qv, 1, now_ns(), &r);
		krg_ipc_engine_call(e, &c, &qp, 1, now_ns(), &r);
		if (r.ret != 0)
			return fprintf(stderr, "engine semop failed: %ld\n", (long)r.ret), 1;
	}
	line("semop V then P (uncontended)", native, now_s() - t0, n);

	/* a waiter parked then completed (no kernel equivalent without a
	 * second process: the baseline is the engine's own semop pair) */
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		if (krg_ipc_engine_call(e, &c, &qp, 2, now_ns(), &r) != KRG_IPC_PENDING)
			return fprintf(stderr, "engine: the P did not wait\n"), 1;
		krg_ipc_engine_call(e, &c, &qv, 1, now_ns(), &r);
	}
	double parked = now_s() - t0;
	printf("%-34s engine %7.3f us (%d completions)\n", "semop P parked, V completes it", parked / n * 1e6, completions);
	krg_ipc_engine_free(e);
	return 0;
}
