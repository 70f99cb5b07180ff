#!/usr/bin/env python3
"""Cross-check helper for pycheck_test.go: MobyPay signing done by Python.

Standard library only. Signing is MobyPay's reference, verbatim:

    hmac.new(secret.encode(),
             json.dumps(payload, sort_keys=True, separators=(',', ':')).encode(),
             hashlib.sha256).hexdigest()

Modes (the secret is passed as the hex of its UTF-8 bytes, so that argv
decoding cannot alter it):

  gen SEED N SECRET_HEX
      Generates N random payloads and writes two lines for each on stdout:
      the envelope exactly as a Python peer puts it on the wire
      (json.dumps({"payload": ..., "signature": ...}) with default
      separators, keys in random order, ensure_ascii randomly on or off),
      then the canonical payload. Ends with the line "end N".

  odd SECRET_HEX
      Writes one line "<name> <envelope>" for each of a fixed set of
      correctly signed but odd messages (ODD_CASES: an amount as a string,
      NaN or Infinity, plans that are not an array, an empty or missing
      nonce, ...), each built as a Python dict and put on the wire with
      json.dumps' defaults, which write NaN and Infinity.

  verify SECRET_HEX
      Reads lines "<base64 of a JSON text> <envelope Go sealed for it>" from
      stdin; "-" instead of an envelope means Go refused the text. For each
      line writes one JSON object {"ok": bool, ...} with the reason and both
      canonical forms when they disagree.
"""

import base64
import hashlib
import hmac
import json
import math
import random
import struct
import sys

# A stock peer runs with CPython's default int conversion limit; json.loads
# refuses longer integers, and our canonicaliser mirrors that.
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(4300)


def canonical(payload):
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def sign(secret, payload):
    return hmac.new(secret.encode(), canonical(payload).encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- strings

CONTROL = [chr(c) for c in range(0x20)] + ["\x7f"]
SPECIAL = list('/<>&"\\\'')
BMP_SPECIAL = [
    "\u2028", "\u2029", "\ufeff", "\uffff", "\ufffe", "\ufffd", "\u0800",
    "\u07ff", "\ud7ff", "\ue000", "\u200b", "\u200d", "\u00a0", "\u20ac",
    "\u4e2d", "\u0301", "\u0100", "\u0085",
]
ASTRAL_SPECIAL = [
    "\U0001F600", "\U0001F4B3", "\U00010000", "\U0010FFFF", "\U0001F1F2",
    "\U0001F1FE", "\U0001F44D", "\U0001F3FD", "\U00020000", "\U000E0001",
]


def rand_char(r):
    k = r.random()
    if k < 0.35:
        return chr(r.randrange(0x20, 0x7F))
    if k < 0.45:
        return r.choice(SPECIAL)
    if k < 0.55:
        return r.choice(CONTROL)
    if k < 0.65:
        return chr(r.randrange(0x80, 0x100))
    if k < 0.72:
        return r.choice(BMP_SPECIAL)
    if k < 0.82:
        while True:
            c = r.randrange(0x100, 0x10000)
            if not 0xD800 <= c <= 0xDFFF:  # lone surrogates are out of scope
                return chr(c)
    if k < 0.90:
        return r.choice(ASTRAL_SPECIAL)
    return chr(r.randrange(0x10000, 0x110000))


def rand_str(r, maxlen=12):
    if r.random() < 0.1:
        maxlen = 40
    return "".join(rand_char(r) for _ in range(r.randint(0, maxlen)))


KEY_WORDS = [
    "type", "txn_id", "amount", "status", "nonce", "timestamp", "plans",
    "planId", "frequency", "totalInstallments", "installmentDetails", "a",
    "A", "b", "_", "Z", "z", "aa", "a_b", "aB", "",
]


def rand_key(r, taken):
    while True:
        k = r.random()
        if k < 0.3:
            key = r.choice(KEY_WORDS)
        elif k < 0.5 and taken:
            # neighbours of an existing key stress code-point ordering
            base = r.choice(sorted(taken))
            key = base + r.choice(["", "a", "\x00", "\x7f", "\u00e9", "\uffff",
                                   "\U0001F600", "\U0010FFFF", " "]) + rand_str(r, 2)
        else:
            key = rand_str(r, 8)
        if key not in taken:
            taken.add(key)
            return key


# ---------------------------------------------------------------- numbers

def bits_to_float(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def float_to_bits(f):
    return struct.unpack("<Q", struct.pack("<d", f))[0]


def next_up(f, steps=1):
    """The float `steps` ulps above f (below if steps < 0); finite f only."""
    for _ in range(abs(steps)):
        up = steps > 0
        if f == 0.0:
            f = bits_to_float(1) if up else -bits_to_float(1)
            continue
        b = float_to_bits(f)
        if (f > 0) == up:
            b += 1
        else:
            b -= 1
        g = bits_to_float(b)
        if not math.isfinite(g):
            return f
        f = g
    return f


BOUNDARIES = [
    1e-5, 1e-4, 1e-3, 0.1, 1.0, 1e15, 1e16, 1e17, 1e21, 1e22, 1e23,
    2.0 ** 53, 2.0 ** 63, 2.0 ** 64, 9999999999999998.0, 5e-324,
    2.2250738585072014e-308, 1.7976931348623157e308, 0.5, 12.5,
]

SPECIAL_FLOATS = [
    0.0, -0.0, 0.1 + 0.2, 1 / 3, 2 / 3, math.pi, math.e, 5e-324, -5e-324,
    2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
    -1.7976931348623157e308, 9.999999999999999e-05, 0.0001, 1e-05, 1e15,
    1e16, 9999999999999998.0, 123456789012345678.0, 1e22, 2.0, 100.0,
    10.0, 12.5, 0.05, 0.3, 1e100, 1.23e-100, 4.35, 0.07, 1.005,
]


def rand_float(r):
    k = r.random()
    if k < 0.03:  # json.dumps writes these by default: NaN, Infinity, -Infinity
        return r.choice([math.nan, math.inf, -math.inf])
    if k < 0.2:
        while True:
            f = bits_to_float(r.getrandbits(64))
            if math.isfinite(f):
                return f
    if k < 0.28:  # subnormal
        f = bits_to_float(r.getrandbits(52))
        return -f if r.random() < 0.5 else f
    if k < 0.4:
        return r.choice(SPECIAL_FLOATS)
    if k < 0.55:  # a few ulps either side of a formatting boundary
        f = next_up(r.choice(BOUNDARIES), r.randint(-3, 3))
        return -f if r.random() < 0.3 else f
    if k < 0.7:  # money
        return r.randrange(0, 10 ** r.randint(1, 11)) / 100
    if k < 0.85:  # short decimals at any scale
        while True:
            f = float("%de%d" % (r.randrange(1, 10 ** r.randint(1, 17)), r.randint(-340, 300)))
            if math.isfinite(f):
                return -f if r.random() < 0.3 else f
    if k < 0.93:
        return math.ldexp(1.0, r.randint(-1074, 1023))
    return float(r.randrange(-(2 ** 70), 2 ** 70))


def rand_int(r):
    k = r.random()
    if k < 0.15:
        return 0
    if k < 0.5:
        return r.randint(-1000, 1000)
    if k < 0.7:
        return r.choice([2 ** 31 - 1, -(2 ** 31), 2 ** 53, 2 ** 53 + 1, 2 ** 63 - 1,
                         -(2 ** 63), 2 ** 63, 2 ** 64, -(2 ** 64) - 1, 10 ** 15, 10 ** 16])
    n = r.randrange(0, 10 ** r.randint(1, 100))
    return -n if r.random() < 0.4 else n


# ---------------------------------------------------------------- values

def rand_scalar(r):
    k = r.random()
    if k < 0.35:
        return rand_str(r)
    if k < 0.55:
        return rand_int(r)
    if k < 0.85:
        return rand_float(r)
    if k < 0.95:
        return r.random() < 0.5
    return None


def rand_value(r, depth):
    if depth < 5 and r.random() < 0.45 - 0.07 * depth:
        return rand_dict(r, depth + 1) if r.random() < 0.5 else rand_list(r, depth + 1)
    return rand_scalar(r)


def rand_dict(r, depth):
    taken = set()
    return {rand_key(r, taken): rand_value(r, depth) for _ in range(r.randint(0, 6))}


def rand_list(r, depth):
    return [rand_value(r, depth) for _ in range(r.randint(0, 6))]


# ---------------------------------------------------------------- MobyPay

def nonce(r):
    raw = bytes(r.getrandbits(8) for _ in range(16))
    return base64.b64encode(raw).decode() if r.random() < 0.7 else \
        "%08x-%04x-%04x-%04x-%012x" % tuple(r.getrandbits(n) for n in (32, 16, 16, 16, 48))


def header(r, typ):
    ts = 1757482354771 + r.randrange(10 ** 9)
    return {
        "type": typ,
        "txn_id": "TXN%d" % (ts - r.randrange(10 ** 4)),
        "timestamp": str(ts) if r.random() < 0.9 else ts,
        "nonce": nonce(r),
    }


def amount(r):
    return r.randrange(1, 10 ** r.randint(2, 9)) / 100


def plan(r, total):
    n = r.choice([0, 3, 6, 12, 24])
    details = []
    for i in range(n):
        details.append({
            "installmentNo": i + 1,
            "amount": round(total / n, 2) if r.random() < 0.8 else total / n,
            "dueDate": "2025-%02d-%02d" % (1 + (i % 12), r.randint(1, 28)),
            "interest": r.choice([0, 0.0, 1.5, 0.75, 3.9]),
        })
    return {
        "planId": "pay-in-full" if n == 0 else "ipp-%d-%s" % (n, r.choice(["maybank", "cimb", "rhb"])),
        "frequency": "" if n == 0 else r.choice(["monthly", "MONTHLY"]),
        "totalInstallments": n,
        "installmentDetails": details,
        "bankName": r.choice(["Maybank", "CIMB Bank", "RHB", "Bank Islam \u0645\u0644\u064a\u0633\u064a\u0627"]),
        "rate": r.choice([0, 0.0, 2.5, 0.35, 1e-05]),
    }


def realistic(r):
    k = r.randrange(8)
    if k == 0:
        p = header(r, "transaction_request")
        p.update(amount=amount(r), payment_mode=r.choice(["card", "bnpl", "duitnow_qr", "ipp"]),
                 kiosk_id="KIOSK%03d" % r.randrange(1000))
    elif k == 1:
        p = header(r, "ack")
        p.update(status=r.choice(["processing", "received", "plan_received"]), pos_id="POS001")
    elif k == 2:
        p = header(r, "transaction_result")
        p.update(status=r.choice(["success", "approved"]), pos_id="POS001",
                 transaction_id="%06d" % r.randrange(10 ** 6), amount=amount(r),
                 authorization_code="%06d" % r.randrange(10 ** 6),
                 card_last4="%04d" % r.randrange(10 ** 4),
                 payment_mode=r.choice(["card", "bnpl", "duitnow_qr", "ipp"]))
    elif k == 3:
        p = header(r, "transaction_result")
        p.update(status="failed", pos_id="POS001", amount=amount(r),
                 error_message=r.choice(["USER_ABORT", "TIMEOUT", "Kad ditolak \u2014 sila cuba lagi",
                                         "\u62d2\u7edd\u4ea4\u6613 \U0001F6AB", rand_str(r)]))
    elif k in (4, 5):
        p = header(r, "transaction_result")
        total = amount(r)
        p.update(status="ipp_plans", pos_id="POS001", amount=total,
                 plans=[plan(r, total) for _ in range(r.randint(1, 5))])
    elif k == 6:
        p = header(r, r.choice(["ipp_plan_selection", "cancel_transaction"]))
        p.update(kiosk_id="KIOSK001")
        if p["type"] == "ipp_plan_selection":
            p["plan_id"] = "ipp-%d-maybank" % r.choice([3, 6, 12])
    else:
        p = header(r, "error")
        p.update(message=rand_str(r, 30), pos_id="POS001")
    if r.random() < 0.15:  # odd but signed, as a careless peer would send it
        odd_variant(r, p)
    if r.random() < 0.3:  # unknown extra fields are signed like the rest
        p["merchant"] = {"name": "Kedai Kopi \u00c1\u00f1\u00e9 \u2603", "mcc": 5814,
                         "geo": [3.139003, 101.686855], "tags": [None, True, False]}
    return p


def odd_variant(r, p):
    k = r.randrange(9)
    if k == 0:
        p["amount"] = "%.2f" % amount(r)
    elif k == 1:
        p["amount"] = r.choice([math.nan, math.inf, -math.inf])
    elif k == 2:
        p["plans"] = r.choice([{"planId": "ipp-6m"}, "ipp-6m", 6, None])
    elif k == 3:
        p["transaction_id"] = {"id": "%06d" % r.randrange(10 ** 6), "bank": "Maybank"}
    elif k == 4:
        p["nonce"] = ""
    elif k == 5:
        del p["nonce"]
    elif k == 6:
        p["status"] = r.choice(["SUCCESS", "Approved", "success ", "FAILED"])
    elif k == 7:
        p["txn_id"] = r.choice([int(p["txn_id"][3:]), None, [p["txn_id"]], math.nan])
    else:
        p["amount"] = -amount(r)


# The odd messages of issue 9 (defect 2), each a success for TXN1757482355464
# that differs from a clean one in one field. pycheck_test.go holds what the
# kiosk must make of each.
ODD_BASE = {
    "type": "transaction_result", "txn_id": "TXN1757482355464", "status": "success",
    "pos_id": "POS001", "transaction_id": "000410", "amount": 2.0,
    "timestamp": "1757482370549", "nonce": "joHQ83Mp9dWbFsREUHDRCg==",
}
ODD_CASES = [
    ("clean", {}),
    ("amount-string", {"amount": "1.00"}),
    ("amount-nan", {"amount": math.nan}),
    ("amount-infinity", {"amount": math.inf}),
    ("amount-minus-infinity", {"amount": -math.inf}),
    ("amount-negative", {"amount": -1.0}),
    ("plans-object", {"plans": {"planId": "ipp-6m", "totalInstallments": 6}}),
    ("plans-of-strings", {"plans": ["ipp-6m"]}),
    ("transaction-id-object", {"transaction_id": {"id": "000410", "bank": "Maybank"}}),
    ("txn-id-number", {"txn_id": 1757482355464}),
    ("nonce-empty", {"nonce": ""}),
    ("nonce-missing", {"nonce": None}),  # None: the key is deleted
    ("status-upper", {"status": "SUCCESS"}),
]


def odd(secret):
    out = sys.stdout.buffer
    for name, change in ODD_CASES:
        payload = dict(ODD_BASE)
        for k, v in change.items():
            if v is None:
                del payload[k]
            else:
                payload[k] = v
        env = {"payload": payload, "signature": sign(secret, payload)}
        out.write(name.encode("ascii") + b" " + json.dumps(env).encode("ascii") + b"\n")
    out.flush()


def shuffled(v, r):
    """The same value with every dict's insertion order shuffled."""
    if isinstance(v, dict):
        items = list(v.items())
        r.shuffle(items)
        return {k: shuffled(x, r) for k, x in items}
    if isinstance(v, list):
        return [shuffled(x, r) for x in v]
    return v


def gen(seed, n, secret):
    r = random.Random(seed)
    out = sys.stdout.buffer
    for _ in range(n):
        payload = realistic(r) if r.random() < 0.25 else rand_dict(r, 1)
        sig = sign(secret, payload)
        wire_payload = shuffled(payload, r)
        env = {"payload": wire_payload, "signature": sig}
        if r.random() < 0.5:
            env = {"signature": sig, "payload": wire_payload}
        wire = json.dumps(env, ensure_ascii=r.random() < 0.5)
        out.write(wire.encode("utf-8") + b"\n")
        out.write(canonical(payload).encode("ascii") + b"\n")
    out.write(b"end %d\n" % n)
    out.flush()


# ---------------------------------------------------------------- verify

ENV_HEAD = b'{"payload":'
ENV_SIG = b',"signature":"'


def check(secret, text, envelope):
    try:
        obj = json.loads(text.decode("utf-8"))
        perr = None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        obj, perr = None, "%s: %s" % (type(e).__name__, e)
    if envelope == b"-":
        if perr is not None:
            return {"ok": True}
        if not hasattr(sys, "set_int_max_str_digits"):
            # Before 3.11 Python had no int digit limit, so Go's refusal of
            # a 4301-digit integer cannot be compared here.
            return {"ok": True}
        return {"ok": False, "why": "Python accepts a text Go refused",
                "python": canonical(obj) if isinstance(obj, (dict, list)) else repr(obj)}
    go = envelope
    if envelope.startswith(ENV_HEAD) and ENV_SIG in envelope:
        go = envelope[len(ENV_HEAD):envelope.rindex(ENV_SIG)]
    go = go.decode("utf-8", "replace")
    if perr is not None:
        return {"ok": False, "why": "Python refuses a text Go accepted: " + perr, "go": go}
    if not isinstance(obj, dict):
        return {"ok": False, "why": "payload is not an object", "go": go}
    py = canonical(obj)
    sig = sign(secret, obj)
    want = ENV_HEAD + py.encode() + ENV_SIG + sig.encode() + b'"}'
    if envelope != want:
        return {"ok": False, "why": "envelope differs from Python's", "python": py, "go": go,
                "python_sig": sig}
    # And as MobyPay's receiver would check it: parse, re-canonicalise, sign.
    env = json.loads(envelope)
    if not hmac.compare_digest(sign(secret, env["payload"]), env["signature"]):
        return {"ok": False, "why": "receiver-side HMAC check failed", "python": py, "go": go}
    return {"ok": True}


def verify(secret):
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\r\n")
        b64, _, envelope = line.partition(b" ")
        res = check(secret, base64.b64decode(b64, validate=True), envelope)
        out.write(json.dumps(res).encode("ascii") + b"\n")
    out.flush()


def main(argv):
    if len(argv) == 5 and argv[1] == "gen":
        gen(int(argv[2]), int(argv[3]), bytes.fromhex(argv[4]).decode("utf-8"))
    elif len(argv) == 3 and argv[1] == "verify":
        verify(bytes.fromhex(argv[2]).decode("utf-8"))
    elif len(argv) == 3 and argv[1] == "odd":
        odd(bytes.fromhex(argv[2]).decode("utf-8"))
    else:
        sys.exit("usage: pycheck.py gen SEED N SECRET_HEX | verify SECRET_HEX | odd SECRET_HEX")


if __name__ == "__main__":
    main(sys.argv)
