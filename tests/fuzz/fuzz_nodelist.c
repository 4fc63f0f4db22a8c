/* fuzz_nodelist.c — libFuzzer target for Kerrighed node lists
 * (src/lib/nodelist.c: "1-3,5", from krgadm's -n and from the API) and
 * krg process ids (src/proc/procid.c, from krg's command lines and the
 * sched.capset body). A list accepted formats to the shortest form, which
 * parses back to the same set; an id accepted prints back as the same id.
 * Build and run: scripts/fuzz.sh SECONDS nodelist. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/nodelist.h"
#include "proc/procid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[256];
	memcpy(text, data, size);
	text[size] = 0;
	struct krg_nodeset s, t;
	if (krg_nodelist_parse(text, &s, err, sizeof(err)) == 0) {
		/* Every id at most "255-255," (8 bytes), 256 of them. */
		char buf[8 * KRG_MAX_NODES + 1];
		krg_nodelist_format(&s, buf, sizeof(buf));
		if (!krg_nodeset_count(&s) || krg_nodelist_parse(buf, &t, err, sizeof(err)) != 0 ||
		    memcmp(&s, &t, sizeof(s)))
			abort();
	} else if (!memchr(err, 0, sizeof(err))) {
		abort();
	}
	uint32_t id;
	if (krg_procid_parse(text, &id) == 0) {
		char buf[16];
		uint32_t id2;
		snprintf(buf, sizeof(buf), "%u", id);
		if (krg_procid_parse(buf, &id2) != 0 || id2 != id)
			abort();
	}
	free(text);
	return 0;
}
