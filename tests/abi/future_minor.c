/* future_minor: ABI 1.99, a minor version newer than any hub knows. */
#include <fedmsg/plugin.h>

static int
f_init(const struct fm_host *host, void *hctx, void **state)
{
	(void)host; (void)hctx;
	*state = NULL;
	return 0;
}

static int
f_consume(void *state, struct fm_msg *msg)
{
	(void)state; (void)msg;
	return FM_CONSUME_OK;
}

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, 99, sizeof(struct fm_plugin),
	"future_minor", "1.0", NULL, NULL,
	f_init, f_consume, NULL, NULL,
};

FM_PLUGIN_DEFINE(plugin)
