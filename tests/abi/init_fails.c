/* init_fails: init() logs an error through the host and refuses. */
#include <fedmsg/plugin.h>

static int
i_init(const struct fm_host *host, void *hctx, void **state)
{
	*state = NULL;
	host->log(hctx, FM_LOG_ERR, "cannot reach the database at %s "
	    "(init_fails refuses on purpose)", "db.invalid:5432");
	return -1;
}

static int
i_consume(void *state, struct fm_msg *msg)
{
	(void)state; (void)msg;
	return FM_CONSUME_OK;
}

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"init_fails", "1.0", NULL, NULL,
	i_init, i_consume, NULL, NULL,
};

FM_PLUGIN_DEFINE(plugin)
