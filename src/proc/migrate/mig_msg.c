/* mig_msg.c — checks of the mig.* messages peers send (mig_msg.h). */
#include "proc/migrate/mig-int.h"
#include "proc/migrate/mig_msg.h"

bool mig_io_valid(const Krg__Mig__Io *io)
{
	return !(io->has_data && io->data.len > MIG_CHUNK);
}

bool mig_recv_valid(const Krg__Mig__Recv *q)
{
	if (q->n_proxies > MIG_MAX_PROXIES)
		return false;
	for (size_t i = 0; i < q->n_proxies; i++)
		if (q->proxies[i]->fd > (1u << 20))  /* no rlimit allows more */
			return false;
	return true;
}

bool mig_move_peer_valid(const Krg__Mig__Move *q)
{
	return q->has_id && q->has_uid;
}
