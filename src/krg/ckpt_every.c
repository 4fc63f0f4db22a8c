/* ckpt_every.c — the client side of periodic checkpoints (cli.h):
 * `krg checkpoint --list` and the --every request `krg run
 * --checkpoint-every` sends once its process runs (docs/reconfiguration.md
 * "Failure recovery"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "api/client.h"
#include "krg/cli.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "proto/ckptsvc.pb-c.h"

int krg_ckpt_every_set(uint32_t id, uint64_t every_ms, char *err, size_t errlen)
{
	Krg__Ckptsvc__Dump d = KRG__CKPTSVC__DUMP__INIT;
	d.id = id;
	d.has_every_ms = true;
	d.every_ms = (uint32_t)every_ms;
	uint8_t buf[64], *resp = NULL;
	size_t rlen = 0, len = krg__ckptsvc__dump__pack(&d, buf);
	int r = krg_api_call(krg_api_socket_path(NULL), "ckpt.dump", buf, len, 30000, &resp, &rlen, err, errlen);
	free(resp);
	if (r < 0 && !err[0])
		snprintf(err, errlen, "%s", strerror(-r));
	return r;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static double age_s(uint64_t then, uint64_t now)
{
	return then && now > then ? (double)(now - then) / 1000 : 0;
}

Krg__Ckptsvc__PeriodicList *krg_ckpt_every_fetch(const char *sock, char *err, size_t errlen)
{
	uint8_t *resp = NULL;
	size_t rlen = 0;
	err[0] = 0;
	int r = krg_api_call(krg_api_socket_path(sock), "ckpt.every.list", NULL, 0, 10000, &resp, &rlen, err, errlen);
	if (r < 0) {
		if (!err[0])
			snprintf(err, errlen, "%s", strerror(-r));
		return NULL;
	}
	Krg__Ckptsvc__PeriodicList *l = krg__ckptsvc__periodic_list__unpack(NULL, rlen, resp);
	free(resp);
	if (!l)
		snprintf(err, errlen, "malformed answer from krgd");
	return l;
}

void krg_ckpt_every_note(const Krg__Ckptsvc__Periodic *e, char *buf, size_t len)
{
	char every[32];
	krg_duration_format(e->every_ms, every, sizeof(every));
	int n = snprintf(buf, len, "app %u, a checkpoint every %s", e->appid, every);
	if (e->recoveries && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "; restarted here after node %u died, from a %.1f s old checkpoint",
			 e->recovered_from, (double)e->recovered_age_ms / 1000);
}

int krg_ckpt_every_list(bool json)
{
	char err[512];
	Krg__Ckptsvc__PeriodicList *l = krg_ckpt_every_fetch(NULL, err, sizeof(err));
	if (!l) {
		fprintf(stderr, "krg checkpoint: %s\n", err);
		return 1;
	}
	uint64_t now = now_ms();
	if (json) {
		struct krg_json j;
		krg_json_init(&j, stdout);
		krg_json_begin_object(&j, NULL);
		krg_json_begin_array(&j, "apps");
		for (size_t i = 0; i < l->n_apps; i++) {
			const Krg__Ckptsvc__Periodic *e = l->apps[i];
			krg_json_begin_object(&j, NULL);
			krg_json_uint(&j, "appid", e->appid);
			krg_json_uint(&j, "id", e->id);
			krg_json_uint(&j, "node", e->node);
			krg_json_uint(&j, "uid", e->uid);
			krg_json_uint(&j, "every_ms", e->every_ms);
			krg_json_uint(&j, "image_id", e->image_id);
			krg_json_uint(&j, "version", e->version);
			krg_json_begin_array(&j, "holders");
			for (size_t k = 0; k < e->n_holders; k++)
				krg_json_uint(&j, NULL, e->holders[k]);
			krg_json_end_array(&j);
			krg_json_bool(&j, "on_kdfs", e->on_kdfs);
			krg_json_double(&j, "age_s", age_s(e->taken_ms, now));
			krg_json_uint(&j, "image_bytes", e->image_bytes);
			krg_json_uint(&j, "recoveries", e->recoveries);
			if (e->recoveries) {
				krg_json_uint(&j, "recovered_from", e->recovered_from);
				krg_json_double(&j, "recovered_ago_s", age_s(e->recovered_ms, now));
				krg_json_double(&j, "resumed_checkpoint_age_s", (double)e->recovered_age_ms / 1000);
			}
			krg_json_end_object(&j);
		}
		krg_json_end_array(&j);
		krg_json_end_object(&j);
		krg_json_finish(&j);
	} else {
		printf("%-10s %-10s %4s %8s %6s %8s %-8s %s\n", "APPID", "RUNS AS", "NODE", "EVERY", "LATEST", "AGE", "ON", "RECOVERED");
		for (size_t i = 0; i < l->n_apps; i++) {
			const Krg__Ckptsvc__Periodic *e = l->apps[i];
			char every[32], latest[16] = "-", age[16] = "-", on[32] = "-", rec[160] = "-";
			krg_duration_format(e->every_ms, every, sizeof(every));
			if (e->version) {
				snprintf(latest, sizeof(latest), "v%u", e->version);
				snprintf(age, sizeof(age), "%.1fs", age_s(e->taken_ms, now));
				size_t o = 0;
				if (e->on_kdfs)
					snprintf(on, sizeof(on), "kdfs");
				for (size_t k = 0; !e->on_kdfs && k < e->n_holders && o < sizeof(on) - 8; k++)
					o += (size_t)snprintf(on + o, sizeof(on) - o, "%s%u", k ? "," : "", e->holders[k]);
			}
			if (e->recoveries)
				snprintf(rec, sizeof(rec), "%u time%s, last %.0fs ago after node %u died, from a %.1fs old checkpoint",
					 e->recoveries, e->recoveries == 1 ? "" : "s", age_s(e->recovered_ms, now), e->recovered_from,
					 (double)e->recovered_age_ms / 1000);
			printf("%-10u %-10u %4u %8s %6s %8s %-8s %s\n", e->appid, e->id, e->node, every, latest, age, on, rec);
		}
	}
	krg__ckptsvc__periodic_list__free_unpacked(l, NULL);
	return 0;
}
