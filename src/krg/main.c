/* krg — the user CLI. One table of commands, one file per command. */
#include "krg/cli.h"
#include "lib/cmdtable.h"

static const struct krg_command commands[] = {
	{ "run", cmd_run, "run a command on a node of the cluster (-n NODE | --auto)" },
	{ "ps", cmd_ps, "list krg processes of the whole cluster" },
	{ "kill", cmd_kill, "send a signal to krg processes by cluster-wide id" },
	{ "ipcs", cmd_ipcs, "the cluster's System V message queues and semaphore arrays" },
	{ "ipcmk", cmd_ipcmk, "create a cluster-wide message queue or semaphore array" },
	{ "ipcrm", cmd_ipcrm, "remove cluster-wide message queues or semaphore arrays" },
	{ "kdfs", cmd_kdfs, "show a kdfs file's chunks and their copies; set a directory's copies" },
	{ "top", cmd_top, "live view of nodes and processes" },
	{ "jobs", cmd_jobs, "list your DRMAA jobs (libdrmaa) with their states" },
	{ "checkpoint", cmd_checkpoint, "save a running process to an image directory" },
	{ "restart", cmd_restart, "recreate a process from an image directory" },
	{ "image", cmd_image, "show the contents of a checkpoint image" },
	{ "migrate", cmd_migrate, "move a running process to another node" },
	{ "capset", cmd_capset, "show or change the capabilities of a process (CAN_MIGRATE, ...)" },
};

int main(int argc, char **argv)
{
	return krg_cmdtable_main("krg", commands, sizeof(commands) / sizeof(commands[0]),
				 "'krg COMMAND --help' describes each. krg talks to the krgd of this node\n"
				 "(--socket PATH or $KRG_SOCKET to choose another).\n",
				 KRG_EXIT_USAGE, argc, argv);
}
