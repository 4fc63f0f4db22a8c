/* callwait.h — calls waiting for their reply by id, across threads: the
 * FUSE clients' side of their socket to krgd (krg-kdfs, krg-fsview). Each
 * FUSE thread registers a call, sends its request with the id, and waits;
 * the one reader thread hands each reply to the call with its id. When
 * krgd goes away every waiting call and every later one fails, so no
 * thread waits for a reply that cannot come. No libkrg dependency: the
 * FUSE programs build it in alone. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct krg_callwait_call {
	struct krg_callwait_call *next;
	uint64_t id;
	void *reply;          /* owned by the call once set */
	bool done;
	pthread_cond_t cond;
};

struct krg_callwait {
	pthread_mutex_t lock;  /* calls, next_id, dead */
	struct krg_callwait_call *calls;
	uint64_t next_id;
	bool dead;
};

#define KRG_CALLWAIT_INIT { .lock = PTHREAD_MUTEX_INITIALIZER, .next_id = 1 }

/* Registers c (on the caller's stack) under a new id, c->id: 0, or -EIO
 * once krgd is gone. */
int krg_callwait_add(struct krg_callwait *w, struct krg_callwait_call *c);
/* Waits, if the request went out (sent 0), until its reply came or krgd
 * is gone; then takes c out. Its reply (the caller's to free) or NULL. */
void *krg_callwait_end(struct krg_callwait *w, struct krg_callwait_call *c, int sent);
/* The reader's side: reply goes to the call with id. false when no call
 * waits for it (the reader frees it). */
bool krg_callwait_deliver(struct krg_callwait *w, uint64_t id, void *reply);
/* krgd is gone: every waiting call and every later one fails. */
void krg_callwait_dead(struct krg_callwait *w);
