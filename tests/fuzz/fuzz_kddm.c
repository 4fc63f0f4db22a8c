/* fuzz_kddm.c — libFuzzer target for what a peer sends to KDDM and the
 * cluster IPC service on it (one net message type, "kddm": src/kddm,
 * src/ipc/ipc_service*.c, and the System V engine behind them). Three
 * KDDM instances with the IPC service each, over the in-process fake
 * transport (tests/unit/kddm_fake.c); a queue and a semaphore set exist,
 * a receiver waits on the queue. The input is a sequence of messages
 * injected into node 0 as if from node 1 or 2: u8 from, u8 request,
 * u16 little-endian length, body; after each, the cluster runs until
 * quiet (bounded). A peer's bytes must never crash, leak or hang a node.
 * Seeds: tests/fuzz/corpus/kddm (recorded from test_ipc_service with
 * KDDM_FAKE_RECORD). Build and run: scripts/fuzz.sh SECONDS kddm. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include "ipc/ipc_service.h"
#include "kddm/kddm.h"
#include "../unit/kddm_fake.h"

#define N 3

static struct krg_ipc_service *svc[N];

static void make_svc(struct kddm *k, void *data)
{
	krg_ipc_service_new(k, NULL, NULL, &svc[kddm_self(k)]);
}

static void done(void *cookie, struct krg_ipc_reply *r)
{
	krg_ipc_reply_release(r);
}

/* Some state for the messages to act on: a queue and a set made from
 * node 1, a receiver of node 2 waiting at the queue's home. */
static void populate(struct kfake *f)
{
	struct krg_ipc_caller who = { .pid = 100, .proc_id = 1 };
	struct krg_ipc_req q = { .op = KRG_IPC_OP_MSGGET, .id = KRG_IPC_ID_ANY, .key = 0x1234, .flags = IPC_CREAT | 0666 };
	krg_ipc_service_submit(svc[1], &who, &q, 1, done, NULL);
	struct krg_ipc_req s = { .op = KRG_IPC_OP_SEMGET, .id = KRG_IPC_ID_ANY, .key = 0x4321, .nsems = 3, .flags = IPC_CREAT | 0666 };
	krg_ipc_service_submit(svc[1], &who, &s, 2, done, NULL);
	kfake_run(f, 10000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kfake *f = kfake_new(N);
	for (unsigned i = 0; i < N; i++)
		make_svc(kfake_kddm(f, i), NULL);
	kfake_run(f, 10000);
	populate(f);
	/* A heap copy per message, so that ASan sees reads past its end. */
	for (size_t off = 0; off + 4 <= size;) {
		unsigned from = 1 + data[off] % 2;
		bool request = data[off + 1] & 1;
		size_t len = (size_t)data[off + 2] | (size_t)data[off + 3] << 8;
		off += 4;
		if (len > size - off)
			len = size - off;
		uint8_t *m = malloc(len ? len : 1);
		memcpy(m, data + off, len);
		kfake_inject(f, from, 0, m, len, request);
		free(m);
		off += len;
		kfake_run(f, 10000);
	}
	for (unsigned i = 0; i < N; i++) {
		krg_ipc_service_free(svc[i]);
		svc[i] = NULL;
	}
	kfake_free(f);
	return 0;
}
