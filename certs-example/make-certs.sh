#!/usr/bin/env bash
# Creates a throw-away local CA and two server certificates for trying rampart
# with TLS on a developer machine. NOT for production: use real certificates
# (e.g. Let's Encrypt) there.
#
#   out/ca.pem, out/ca-key.pem            local CA (ECDSA P-256)
#   out/localhost.pem, localhost-key.pem  leaf for localhost, 127.0.0.1, ::1 (full chain: leaf, CA)
#   out/example.pem, example-key.pem      leaf for example.test, *.example.test (full chain: leaf, CA)
#
# Usage: certs-example/make-certs.sh [--force]
# Existing files are kept unless --force is given.
set -euo pipefail

DAYS=825
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/out"

force=0
for arg in "$@"; do
  case "$arg" in
    --force|-f) force=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (usage: $0 [--force])" >&2; exit 2 ;;
  esac
done

command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }

files=(ca.pem ca-key.pem localhost.pem localhost-key.pem example.pem example-key.pem)
if [[ $force -eq 0 ]]; then
  all=1
  for f in "${files[@]}"; do [[ -s "$out/$f" ]] || all=0; done
  if [[ $all -eq 1 ]]; then
    echo "certificates already exist in $out (use --force to recreate)"
    exit 0
  fi
fi

mkdir -p "$out"
umask 077
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# With --force or a missing CA, the CA and both leaves are recreated.
if [[ $force -eq 1 || ! -s "$out/ca.pem" || ! -s "$out/ca-key.pem" ]]; then
  newkey "$out/ca-key.pem"
  openssl req -x509 -new -sha256 -days "$DAYS" -key "$out/ca-key.pem" \
    -subj "/O=rampart example/CN=rampart example local CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$out/ca.pem"
  force=1   # leaves signed by an earlier CA would no longer verify: recreate them
fi

# leaf NAME CN SAN
leaf() {
  local name="$1" cn="$2" san="$3"
  if [[ $force -eq 0 && -s "$out/$name.pem" && -s "$out/$name-key.pem" ]]; then
    echo "keeping $out/$name.pem"
    return
  fi
  newkey "$out/$name-key.pem"
  openssl req -new -sha256 -key "$out/$name-key.pem" -subj "/O=rampart example/CN=$cn" \
    -out "$tmp/$name.csr"
  cat > "$tmp/$name.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
subjectAltName=$san
EXT
  openssl x509 -req -sha256 -days "$DAYS" -in "$tmp/$name.csr" \
    -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -set_serial "0x$(openssl rand -hex 16)" \
    -extfile "$tmp/$name.ext" -out "$tmp/$name.crt"
  # Full chain: leaf first, then the CA.
  cat "$tmp/$name.crt" "$out/ca.pem" > "$out/$name.pem"
  echo "wrote $out/$name.pem and $out/$name-key.pem"
}

leaf localhost localhost "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf example example.test "DNS:example.test,DNS:*.example.test"

chmod 644 "$out/ca.pem" "$out/localhost.pem" "$out/example.pem"
chmod 600 "$out/ca-key.pem" "$out/localhost-key.pem" "$out/example-key.pem"

echo "done. Trust $out/ca.pem in a client, e.g.: curl --cacert $out/ca.pem https://localhost:8443/"
