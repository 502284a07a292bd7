#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "x509util.h"

char *
x509_first_cn(X509 *cert)
{
	X509_NAME *name = X509_get_subject_name(cert);
	int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	ASN1_STRING *data;
	unsigned char *utf8 = NULL;
	char *cn;
	int n;

	if (i < 0)
		return NULL;
	data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	if ((n = ASN1_STRING_to_UTF8(&utf8, data)) < 0)
		return NULL;
	/* A NUL inside would let "a\0evil" pass as "a" in routing checks. */
	cn = memchr(utf8, 0, (size_t)n) ? NULL : strndup((char *)utf8, (size_t)n);
	OPENSSL_free(utf8);
	return cn;
}

int64_t
x509_time(const ASN1_TIME *t, int64_t fallback)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return fallback;
	return (int64_t)timegm(&tm);
}

int
x509_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}
