/* Small X.509 and PEM helpers shared by the signer and the validator. */
#ifndef FM_X509UTIL_H
#define FM_X509UTIL_H

#include <stdint.h>

#include <openssl/x509.h>

/* The first commonName of the subject as a malloc'ed string, or NULL. */
char *x509_first_cn(X509 *cert);

/* An ASN1_TIME as seconds since the epoch; fallback when t is NULL/bad. */
int64_t x509_time(const ASN1_TIME *t, int64_t fallback);

/*
 * A pem_password_cb that refuses: given to every PEM read, so that an
 * encrypted PEM block (in a file, or in a message's certificate field)
 * fails at once instead of OpenSSL prompting on the terminal.
 */
int x509_no_password(char *buf, int size, int rwflag, void *u);

#endif
