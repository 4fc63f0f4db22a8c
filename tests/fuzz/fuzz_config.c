/* fuzz_config.c — libFuzzer target for the files krgd reads at start:
 * krgd.conf (src/lib/config.c, through krg_config_load on a real file so
 * the reading is covered too) and the cluster key file (src/lib/key.c).
 * Checks that a config accepted is consistent: node ids in range, every
 * string terminated. Build and run:
 * scripts/fuzz.sh SECONDS config. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/config.h"
#include "lib/key.h"
#include "lib/log.h"

static char dir[] = "/tmp/krg-fuzz-config.XXXXXX";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(dir))
		abort();
	krg_log_set_level(LOG_LVL_ERROR);
	return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
}

static void check_string(const char *s, size_t cap)
{
	if (!memchr(s, 0, cap))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[512];
	/* The key file: at most 66 bytes are read, so short inputs suffice. */
	snprintf(path, sizeof(path), "%s/cluster.key", dir);
	write_file(path, data, size);
	uint8_t key[KRG_KEY_BYTES];
	krg_key_load(path, key, err, sizeof(err));
	check_string(err, sizeof(err));

	snprintf(path, sizeof(path), "%s/krgd.conf", dir);
	write_file(path, data, size);
	struct krg_config *c = malloc(sizeof(*c));
	err[0] = 0;
	if (krg_config_load(path, c, err, sizeof(err)) == 0) {
		if (c->n_nodes > KRG_MAX_NODES)
			abort();
		for (size_t i = 0; i < c->n_nodes; i++) {
			if (c->nodes[i].id >= KRG_MAX_NODES)
				abort();
			check_string(c->nodes[i].host, sizeof(c->nodes[i].host));
		}
		check_string(c->cluster_name, sizeof(c->cluster_name));
		check_string(c->state_dir, sizeof(c->state_dir));
		check_string(c->key_file, sizeof(c->key_file));
		check_string(c->api_socket, sizeof(c->api_socket));
	} else {
		check_string(err, sizeof(err));
	}
	free(c);
	return 0;
}
