/* kddm_fake.h — an in-process network of KDDM instances for unit tests:
 * messages are queued and delivered by kfake_run() in order, timers run on
 * a virtual clock, nodes can be killed (their links fail as a dead krgd's
 * would: requests to them end -ECONNRESET) and the membership changes are
 * given to every live instance, as the Raft log would. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kddm/kddm.h"

#define KFAKE_MAX 8

struct kfake;

/* n instances (node ids 0..n-1), all up and ready to serve. */
struct kfake *kfake_new(unsigned n);
void kfake_free(struct kfake *f);
struct kddm *kfake_kddm(struct kfake *f, unsigned node);
/* Deliver messages and fire timers until nothing is left (or max_steps,
 * 0 = 1 000 000). Returns the steps taken. */
size_t kfake_run(struct kfake *f, size_t max_steps);
/* Virtual time in ms. */
uint64_t kfake_now(const struct kfake *f);
/* Kill node: its instance is freed, every other learns kddm_node_down. */
void kfake_kill(struct kfake *f, unsigned node);
/* node leaves cleanly: leaving on every instance, run until quiet, then
 * kill it. */
void kfake_leave(struct kfake *f, unsigned node);
/* Start a new instance as node (killed before, or never started), up
 * everywhere. make_sets is called on the new instance first. */
void kfake_start(struct kfake *f, unsigned node, void (*make_sets)(struct kddm *k, void *data), void *data);
/* Cut node off from the others (true), or heal (false): requests across
 * fail -EHOSTUNREACH, one-way messages are lost, as over a cut link;
 * membership changes are the test's to give (kddm_node_down/up). */
void kfake_cut(struct kfake *f, unsigned node, bool cut);
/* Messages delivered so far. */
uint64_t kfake_messages(const struct kfake *f);
/* Drop the next n messages addressed to node to (fault injection). */
void kfake_drop_to(struct kfake *f, unsigned to, unsigned n);
/* Inject a raw message as if sent by from (a peer's bytes). */
void kfake_inject(struct kfake *f, unsigned from, unsigned to, const uint8_t *body, size_t len, bool request);
/* Status of the last injected request's reply (1 = not answered yet). */
int kfake_injected_status(const struct kfake *f);
