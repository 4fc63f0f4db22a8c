/* krgadm.h — shared by the krgadm subcommand files (one file per command
 * group, a table in main.c, as git's builtin/ does). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "proto/api.pb-c.h"

/* Exit statuses of krgadm (docs/krgadm.md). */
#define KRGADM_OK 0
#define KRGADM_FAIL 1      /* the operation failed; reason on stderr */
#define KRGADM_USAGE 2     /* bad command line */
#define KRGADM_NO_DAEMON 3 /* cannot reach krgd */

struct krgadm_opts {
	const char *socket; /* --socket, or NULL */
	bool json;
};

int cmd_cluster(int argc, char **argv);
int cmd_nodes(int argc, char **argv);
int cmd_sched(int argc, char **argv);
int cmd_ipc(int argc, char **argv);
int cmd_kdfs(int argc, char **argv);

/* Call krgd; prints "krgadm: <reason>" on failure. Returns 0 or an exit status. */
int krgadm_call(const char *socket, const char *command, const void *body, size_t len, uint8_t **resp,
		size_t *resp_len);
/* The command line of `krgadm GROUP status [--json] [--socket PATH]`
 * (ipc, kdfs): into o. -1 when the caller goes on, else the exit status
 * (--help printed, or a usage error said on stderr). */
#include <stdio.h>
int krgadm_status_args(const char *group, int argc, char **argv, void (*usage)(FILE *), struct krgadm_opts *o);
/* `krgadm GROUP status`: its command line, then krgd's answer to
 * `command` decoded as desc (*out; protobuf_c_message_free_unpacked
 * after). -1 when the caller goes on, else the exit status (--help, a
 * usage error, krgd unreachable or its answer undecodable: said). */
#include <protobuf-c/protobuf-c.h>
int krgadm_status_fetch(const char *group, int argc, char **argv, void (*usage)(FILE *), const char *command,
			const ProtobufCMessageDescriptor *desc, struct krgadm_opts *o, ProtobufCMessage **out);
/* Fetch cluster.status; caller frees with krg__api__cluster_status__free_unpacked. */
int krgadm_fetch_status(const char *socket, Krg__Api__ClusterStatus **out);
const char *krgadm_state_name(int state);
/* Table of nodes; only: NULL for all, else a KRG_MAX_NODES-sized filter. */
void krgadm_print_nodes(const Krg__Api__ClusterStatus *st, const bool *only);
