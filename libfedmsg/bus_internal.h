/* What the hub's event loop needs from the bus beyond the public API. */
#ifndef FM_BUS_INTERNAL_H
#define FM_BUS_INTERNAL_H

#include <zmq.h>

#include <fedmsg/bus.h>

/*
 * Copy the subscriber's poll items (one per connected URL) into items[max];
 * returns how many.  After zmq_poll() says one is readable, call
 * fm_subscriber_recv() with timeout 0.
 */
int bus_subscriber_poll_items(const struct fm_subscriber *s,
    zmq_pollitem_t *items, int max);

#endif
