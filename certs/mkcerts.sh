#!/bin/sh
# mkcerts.sh [-f] DIR [SERVICE...]
#
# Make a development PKI for fedmsg-c in DIR (see certs/README.md):
#   ca.crt, ca.key          CA "fedmsg-c Development CA", 10 years
#   <SERVICE>.crt/.key      RSA-2048 leaf per service, CN = SERVICE, 825 days
#   revoked.crt/.key        a leaf (CN "revoked") that crl.pem revokes
#   crl.pem                 the CA's CRL, nextUpdate in 365 days
#   openssl.cnf, ca-db/     the CA's config and database, to issue or revoke
#                           more later: cd DIR && openssl ca -config openssl.cnf
# Default services: shell-localhost relay-localhost hub-localhost
# bridge-localhost signing_relay-localhost.
#
# Keys are unencrypted PEM (fedmsg cannot use encrypted keys).  These are for
# development and tests only.
#
# Does nothing if DIR/ca.crt exists, unless -f is given (then the files this
# script makes are replaced).  Everything is made in a scratch directory
# inside DIR and moved into place at the end, ca.crt last, so an interrupted
# run never leaves a half-made PKI that a later run would take as done.
set -eu

prog=mkcerts.sh
usage() {
	echo "usage: $prog [-f] DIR [SERVICE...]" >&2
	exit 2
}

force=0
while [ $# -gt 0 ]; do
	case $1 in
	-f) force=1; shift ;;
	-h|--help)
		sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
		exit 0 ;;
	--) shift; break ;;
	-*) echo "$prog: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || usage
dir=$1
shift
if [ $# -eq 0 ]; then
	set -- shell-localhost relay-localhost hub-localhost bridge-localhost \
	    signing_relay-localhost
fi

for s in "$@"; do
	case $s in
	''|.*|*[!A-Za-z0-9._-]*)
		echo "$prog: bad service name '$s' (letters, digits, '.', '_', '-'; not starting with '.')" >&2
		exit 2 ;;
	ca|revoked|crl)
		echo "$prog: service name '$s' is reserved" >&2
		exit 2 ;;
	esac
done

command -v openssl >/dev/null 2>&1 || {
	echo "$prog: openssl not found (apt-get install openssl)" >&2
	exit 1
}

if [ -e "$dir/ca.crt" ] && [ "$force" -eq 0 ]; then
	echo "$prog: $dir/ca.crt exists, keeping the PKI in $dir (-f to remake it)"
	exit 0
fi

mkdir -p "$dir"
umask 077
work=$(mktemp -d "$dir/.mkcerts.XXXXXX")
work=$(cd "$work" && pwd)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

log=$work/openssl.log
run() {
	if ! "$@" >>"$log" 2>&1; then
		echo "$prog: failed: $*" >&2
		cat "$log" >&2
		exit 1
	fi
}

here=$(pwd)
cd "$work"
mkdir -p ca-db/newcerts
: > ca-db/index.txt
echo 1000 > ca-db/crlnumber

# All paths are relative: run openssl from DIR.
cat > openssl.cnf <<'EOF'
# fedmsg-c development CA, written by certs/mkcerts.sh.
# Use from this directory, e.g.:
#   openssl ca -config openssl.cnf -revoke X.crt -crl_reason keyCompromise
#   openssl ca -config openssl.cnf -gencrl -out crl.pem
[ ca ]
default_ca		= fedmsg_dev_ca

[ fedmsg_dev_ca ]
dir			= .
database		= $dir/ca-db/index.txt
new_certs_dir		= $dir/ca-db/newcerts
crlnumber		= $dir/ca-db/crlnumber
certificate		= $dir/ca.crt
private_key		= $dir/ca.key
rand_serial		= yes
unique_subject		= no
default_md		= sha256
default_days		= 825
default_crl_days	= 365
policy			= policy_cn
email_in_dn		= no
copy_extensions		= none
x509_extensions		= leaf_ext

[ policy_cn ]
commonName		= supplied

[ req ]
distinguished_name	= req_dn
prompt			= no
default_md		= sha256

[ req_dn ]
CN			= unused

[ ca_ext ]
basicConstraints	= critical, CA:TRUE
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash

[ leaf_ext ]
basicConstraints	= critical, CA:FALSE
keyUsage		= critical, digitalSignature, keyEncipherment
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid
EOF

run openssl req -config openssl.cnf -x509 -newkey rsa:2048 -nodes -sha256 \
    -days 3650 -subj "/CN=fedmsg-c Development CA" -extensions ca_ext \
    -keyout ca.key -out ca.crt

leaf() {
	run openssl req -config openssl.cnf -new -newkey rsa:2048 -nodes \
	    -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
	run openssl ca -config openssl.cnf -batch -notext -days 825 \
	    -extensions leaf_ext -in "$1.csr" -out "$1.crt"
	rm -f "$1.csr"
}

for s in "$@"; do
	leaf "$s"
done
leaf revoked
run openssl ca -config openssl.cnf -revoke revoked.crt -crl_reason keyCompromise
run openssl ca -config openssl.cnf -gencrl -crldays 365 -out crl.pem

chmod 600 ./*.key
chmod 644 ./*.crt crl.pem openssl.cnf
rm -f "$log" ca-db/*.old

# Move into place; ca.crt last marks the PKI as complete.
made=""
for s in "$@" revoked; do
	made="$made $s.key $s.crt"
done
made="ca.key $made crl.pem openssl.cnf"
cd "$here"
rm -f "$dir/ca.crt"
rm -rf "$dir/ca-db"
mv "$work/ca-db" "$dir/ca-db"
for f in $made ca.crt; do
	mv -f "$work/$f" "$dir/$f"
done
rm -rf "$work"

echo "$prog: made a development PKI in $dir:"
for f in ca.crt $made; do
	case $f in
	*.crt) what=$(openssl x509 -in "$dir/$f" -noout -subject -enddate |
		    tr '\n' ' ') ;;
	crl.pem) what="revokes revoked.crt, $(openssl crl -in "$dir/$f" \
		    -noout -nextupdate)" ;;
	*.key) what="private key, unencrypted PEM" ;;
	*) what="CA config; CA database in ca-db/" ;;
	esac
	echo "  $dir/$f: $what"
done
