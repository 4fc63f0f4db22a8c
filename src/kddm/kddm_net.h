/* kddm_net.h — KDDM over krg_net (krgd's transport): one message type,
 * "kddm", carrying krg.kddm.Msg bodies on the authenticated control
 * channel; replies are krg_net replies; retries run on libuv timers. */
#pragma once
#include <uv.h>
#include "kddm/kddm.h"
#include "net/net.h"

struct kddm_net;

/* Create the instance for this node (krg_net_self) and register the
 * message type. One per krg_net. */
int kddm_net_start(uv_loop_t *loop, struct krg_net *net, struct kddm_net **out);
struct kddm *kddm_net_kddm(struct kddm_net *kn);
/* Free the KDDM instance (callbacks waiting get -ECANCELED) and stop its
 * timers. The small adapter stays (krg_net keeps its handler until it
 * closes) and answers nothing more. */
void kddm_net_stop(struct kddm_net *kn);
