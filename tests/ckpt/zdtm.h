/* zdtm.h — the shape of every checkpoint test (after CRIU's zdtm):
 *   prog READY_FILE
 * sets up its state, creates READY_FILE, waits for SIGUSR1 (sent by
 * run.sh after checkpoint --kill and restart), verifies, prints PASS or
 * FAIL: reason, exits 0 or 1. test_wait() is a raw pause() loop so the
 * program is caught inside a syscall, the hardest place to restart. */
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t zdtm_go;

static void zdtm_usr1(int sig) { zdtm_go = 1; }

static inline void test_init(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s READY_FILE\n", argv[0]);
		exit(2);
	}
	/* Only our own fds: whatever the driver's driver left open (pipes of
	 * the test harness) would be refused at checkpoint. */
	closefrom(3);
	struct sigaction sa = { .sa_handler = zdtm_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	setvbuf(stdout, NULL, _IONBF, 0);
}

/* Tell the driver we are set up. */
static inline void test_ready(char **argv)
{
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

static inline void test_wait(void)
{
	while (!zdtm_go)
		pause();
}

#define fail(...) do { printf("FAIL: "); printf(__VA_ARGS__); printf("\n"); exit(1); } while (0)
#define pass() do { printf("PASS\n"); exit(0); } while (0)
