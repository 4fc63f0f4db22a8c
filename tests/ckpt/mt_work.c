/* A multithreaded worker for tests/ckpt/programs.sh: NT threads compute
 * hash chains in rounds, meeting at a barrier after each; the main thread
 * prints one line per round (the combined value) and a final line. The
 * output is deterministic, so a run checkpointed and restarted mid-way
 * must print exactly what an uninterrupted run prints.
 * Usage: mt_work [ROUNDS [ITERS]] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NT 4
static int rounds = 60;
static long iters = 2000000;
static uint64_t val[NT];
static pthread_barrier_t bar;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t total;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	uint64_t v = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
	for (int r = 0; r < rounds; r++) {
		for (long i = 0; i < iters; i++)
			v = mix(v + (uint64_t)i);
		val[id] = v;
		pthread_mutex_lock(&mu);
		total += v >> 8;
		pthread_mutex_unlock(&mu);
		pthread_barrier_wait(&bar);  /* values ready */
		pthread_barrier_wait(&bar);  /* main printed them */
	}
	return (void *)(uintptr_t)(v & 0xffff);
}

int main(int argc, char **argv)
{
	if (argc > 1) rounds = atoi(argv[1]);
	if (argc > 2) iters = atol(argv[2]);
	pthread_t t[NT];
	pthread_barrier_init(&bar, NULL, NT + 1);
	for (int i = 0; i < NT; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i)) return 1;
	for (int r = 0; r < rounds; r++) {
		pthread_barrier_wait(&bar);
		uint64_t c = 0;
		for (int i = 0; i < NT; i++) c = mix(c ^ val[i]);
		printf("round %d %016llx\n", r, (unsigned long long)c);
		fflush(stdout);
		pthread_barrier_wait(&bar);
	}
	uint64_t joined = 0;
	for (int i = 0; i < NT; i++) {
		void *ret;
		if (pthread_join(t[i], &ret)) return 1;
		joined = joined * 65536 + (uintptr_t)ret;
	}
	printf("done total %016llx joined %016llx\n", (unsigned long long)total, (unsigned long long)joined);
	return 0;
}
