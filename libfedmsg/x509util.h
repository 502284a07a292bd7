/* Small X.509 helpers shared by the signer and the validator. */
#ifndef FM_X509UTIL_H
#define FM_X509UTIL_H

#include <stdint.h>

#include <openssl/x509.h>

/* The first commonName of the subject as a malloc'ed string, or NULL. */
char *x509_first_cn(X509 *cert);

/* An ASN1_TIME as seconds since the epoch; fallback when t is NULL/bad. */
int64_t x509_time(const ASN1_TIME *t, int64_t fallback);

#endif
