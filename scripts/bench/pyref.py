#!/usr/bin/env python3
"""The Python reference for `make bench`: MobyPay's signer (json.dumps with
sort_keys and compact separators, then HMAC-SHA256, as
protocol/mobypay/testdata/pycheck.py quotes it) timed on the messages the
Go benchmarks use, which TestBenchMessages writes into DIR.

    pyref.py DIR

prints "sign NS" and "verify NS", nanoseconds per operation, the best of
five timeit repeats: sign is the request payload (a dict) to its
signature; verify is the result's wire line to a checked signature.
"""

import hashlib
import hmac
import json
import os
import sys
import timeit


def canonical(payload):
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "secret"), "rb") as f:
        secret = f.read()
    with open(os.path.join(d, "sign.json"), encoding="utf-8") as f:
        request = json.load(f)
    with open(os.path.join(d, "verify.ndjson"), encoding="utf-8") as f:
        wire = f.read().strip()

    def sign():
        return hmac.new(secret, canonical(request).encode(), hashlib.sha256).hexdigest()

    def verify():
        env = json.loads(wire)
        want = hmac.new(secret, canonical(env["payload"]).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, env["signature"]):
            raise SystemExit("pyref: the Go-sealed result does not verify")

    verify()
    for name, fn in (("sign", sign), ("verify", verify)):
        t = timeit.Timer(fn)
        n, _ = t.autorange()
        best = min(t.repeat(repeat=5, number=n)) / n
        print(f"{name} {best * 1e9:.0f}")


main()
