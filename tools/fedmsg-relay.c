/*
 * fedmsg-relay: active publishers (fedmsg-logger, git hooks, koji) connect
 * to relay_inbound; everything they send is re-published, byte for byte,
 * on endpoints["relay_outbound"], so signatures stay valid.
 */
#include "relay.h"

int
main(int argc, char **argv)
{
	return relay_main(argc, argv, "fedmsg-relay", false);
}
