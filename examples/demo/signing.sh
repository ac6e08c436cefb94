# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
#
# Signed values as a shop's backend and its e-mail tool make them
# (docs/directives.md, "Signed values"), in shell: sourced by the demo
# (examples/demo/run) and the package test (tests/package/run).  Fields are
# handled as hex strings.

cef_hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
cef_bin() { printf "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }
cef_lp() { printf '%04x%s' $(( ${#1} / 2 )) "$1"; }
cef_hmac16() {  # SECRETFILE: the first 16 bytes of HMAC-SHA256(stdin), hex
    openssl dgst -sha256 -hmac "$(cat "$1")" -binary | od -An -tx1 \
        | tr -d ' \n' | head -c 32
}
cef_b64url() { cef_bin "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }

# SIGNING_SECRET TYPE VALUE: the signature of a signed key (VALUE.SIG)
cef_sign_key() {
    cef_b64url "$(cef_bin "$(cef_lp "$(cef_hex cef-signed-key-v2)")$(cef_lp \
        "$(cef_hex "$2")")$(cef_lp "$(cef_hex "$3")")" | cef_hmac16 "$1")"
}

# SIGNING_SECRET STORE_SECRET TYPE VALUE EXPIRES: an e-mail link token,
# naming the visitor by the store key only
cef_link_token() {
    local key body
    key=$(printf '%s' "$3:$4" | cef_hmac16 "$2")
    body=$(cef_lp "$(cef_hex "$3")")$(cef_lp "$key")$(cef_lp \
        "$(printf '%016x' "$5")")
    cef_b64url "$body$(cef_bin "$(cef_lp "$(cef_hex cef-link-token-v2)")$body" \
        | cef_hmac16 "$1")"
}
