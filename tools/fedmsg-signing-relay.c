/*
 * fedmsg-signing-relay: like fedmsg-relay, but every message is signed with
 * certnames["signing_relay"] before it is re-published, so unsigned
 * publishers can join a bus that validates.  Unlike fedmsg's, it drops an
 * old signature before signing, so already-signed input comes out valid.
 */
#include "relay.h"

int
main(int argc, char **argv)
{
	return relay_main(argc, argv, "fedmsg-signing-relay", true);
}
