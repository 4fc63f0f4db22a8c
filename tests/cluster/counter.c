/* counter — a long computation for the failure recovery test
 * (recover.sh): N steps of STEP_MS each; every step mixes the step number
 * into 8 MiB of memory and writes it to DIR/progress. At the end
 * DIR/result gets the step count and a checksum of all that memory: a
 * run restarted from a checkpoint ends with the same line as one that
 * was never interrupted, and any lost or repeated step changes it.
 * DIR/steps gets one line per step (appended): a restart from a
 * checkpoint shows as a step number that goes back, to the checkpoint's.
 * Usage: counter DIR N STEP_MS */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORDS (1u << 20) /* 8 MiB of uint64_t */

static void put(const char *dir, const char *name, const char *text)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) < 0 || rename(tmp, path) < 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: counter DIR N STEP_MS\n");
		return 2;
	}
	const char *dir = argv[1];
	unsigned n = (unsigned)atoi(argv[2]), step_ms = (unsigned)atoi(argv[3]);
	uint64_t *mem = malloc(WORDS * sizeof(*mem));
	if (!mem)
		return 1;
	for (uint32_t k = 0; k < WORDS; k++)
		mem[k] = k * 0x9e3779b97f4a7c15ull;
	char line[128];
	for (unsigned i = 1; i <= n; i++) {
		for (uint32_t k = (i * 7919u) % WORDS, c = 0; c < 4096; c++, k = (k + 257) % WORDS)
			mem[k] = (mem[k] ^ i) * 0xff51afd7ed558ccdull;
		snprintf(line, sizeof(line), "%u\n", i);
		put(dir, "progress", line);
		char path[4096];
		snprintf(path, sizeof(path), "%s/steps", dir);
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line) || close(fd) < 0) {
			perror(path);
			return 1;
		}
		if (step_ms) {
			struct timespec ts = { step_ms / 1000, (long)(step_ms % 1000) * 1000000 };
			while (nanosleep(&ts, &ts) < 0)
				;
		}
	}
	uint64_t sum = 0;
	for (uint32_t k = 0; k < WORDS; k++)
		sum = sum * 31 + mem[k];
	snprintf(line, sizeof(line), "steps %u sum %016llx\n", n, (unsigned long long)sum);
	put(dir, "result", line);
	return 0;
}
