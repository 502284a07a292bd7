/*
 * no_entry: a shared object without fm_plugin_entry_v1 (it exports an
 * entry for another major version instead, as a plugin built for ABI 2
 * would).
 */
#include <fedmsg/plugin.h>

FM_EXPORT int fm_plugin_entry_v2(void);

FM_EXPORT int
fm_plugin_entry_v2(void)
{
	return 2;
}
