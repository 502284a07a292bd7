/* bad_abi: a descriptor that claims ABI major 99 behind the v1 symbol. */
#include <fedmsg/plugin.h>

static int
b_init(const struct fm_host *host, void *hctx, void **state)
{
	(void)host; (void)hctx;
	*state = NULL;
	return 0;
}

static int
b_consume(void *state, struct fm_msg *msg)
{
	(void)state; (void)msg;
	return FM_CONSUME_OK;
}

static const struct fm_plugin plugin = {
	99, 0, sizeof(struct fm_plugin),
	"bad_abi", "1.0", NULL, NULL,
	b_init, b_consume, NULL, NULL,
};

FM_PLUGIN_DEFINE(plugin)
