/* consumers/robosignatory/xmlrpc.c's decoder on arbitrary bytes: what a
 * hostile or broken Koji (or what sits in front of it) can send. */
#include <stddef.h>
#include <stdint.h>

#include "../../consumers/robosignatory/xmlrpc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xr_value *v = NULL;
	char err[256];

	if (xr_parse_response((const char *)data, size, &v, err,
	    sizeof(err)) >= 0) {
		(void)xr_get_str(v, "faultString");
		xr_free(v);
	}
	return 0;
}
