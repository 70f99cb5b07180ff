package mobypay

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	cases := []struct{ in, want string }{
		// key order at every depth, compact separators
		{`{"b": 1, "a": {"d": [ {"z":1,"y":2} ], "c": true}}`, `{"a":{"c":true,"d":[{"y":2,"z":1}]},"b":1}`},
		{"\r\n\t {}\n", `{}`},
		{`[]`, `[]`},
		{`[null,false,true]`, `[null,false,true]`},
		// keys sort by code point: UTF-8 byte order, astral after BMP
		{`{"\u00e9":1,"z":2,"\ud83d\ude00":3,"\uffff":4,"A":5}`, `{"A":5,"z":2,"\u00e9":1,"\uffff":4,"\ud83d\ude00":3}`},
		// floats: Python repr
		{`2.0`, `2.0`},
		{`100.0`, `100.0`},
		{`12.50`, `12.5`},
		{`1e-05`, `1e-05`},
		{`0.00001`, `1e-05`},
		{`0.0001`, `0.0001`},
		{`1e16`, `1e+16`},
		{`1E16`, `1e+16`},
		{`1e15`, `1000000000000000.0`},
		{`1E5`, `100000.0`},
		{`0.1e1`, `1.0`},
		{`-0.0`, `-0.0`},
		{`0.0`, `0.0`},
		{`0.30000000000000004`, `0.30000000000000004`},
		{`123456789012345678.0`, `1.2345678901234568e+17`},
		{`1.5e-05`, `1.5e-05`},
		{`5e-324`, `5e-324`},
		{`1.7976931348623157e308`, `1.7976931348623157e+308`},
		{`1e22`, `1e+22`},
		{`1e-400`, `0.0`},
		{`-1e-400`, `-0.0`},
		{`1.25e2`, `125.0`},
		// integers: verbatim at any size, but Python's int("-0") is 0
		{`0`, `0`},
		{`-0`, `0`},
		{`-12`, `-12`},
		{`123456789012345678901234567890`, `123456789012345678901234567890`},
		// strings: ensure_ascii, short escapes, no HTML escaping, '/' bare
		{`"a/b<c>&d"`, `"a/b<c>&d"`},
		{`"\/"`, `"/"`},
		{`"é😀"`, `"\u00e9\ud83d\ude00"`},
		{`"\u00E9"`, `"\u00e9"`},
		{`"\b\f\n\r\t\"\\"`, `"\b\f\n\r\t\"\\"`},
		{`"\u0001\u001f\u007f\u0000"`, `"\u0001\u001f\u007f\u0000"`},
		{"\"\x7f\"", `"\u007f"`},
		{`"\u2028 \ufeff"`, `"\u2028 \ufeff"`},
		{`"\ud83d\ude00"`, `"\ud83d\ude00"`},
		// what CPython's json.loads reads beyond JSON, written back as
		// json.dumps writes it (allow_nan is on by default)
		{`NaN`, `NaN`},
		{`Infinity`, `Infinity`},
		{`-Infinity`, `-Infinity`},
		{`[NaN, Infinity ,-Infinity]`, `[NaN,Infinity,-Infinity]`},
		{`{"amount": NaN, "b": {"c": -Infinity}}`, `{"amount":NaN,"b":{"c":-Infinity}}`},
		{`"NaN"`, `"NaN"`},
		// a float literal beyond the double range is ±inf to Python
		{`1e400`, `Infinity`},
		{`-1e400`, `-Infinity`},
		{`1E+309`, `Infinity`},
		{`-1.8e308`, `-Infinity`},
		{`1e999999999999999999999999`, `Infinity`},
		{`1.7976931348623158e308`, `1.7976931348623157e+308`}, // below the midpoint
		{`1.7976931348623159e308`, `Infinity`},                // above it
		{`-0.0e999`, `-0.0`},
		{`0e99999999999999999999`, `0.0`},
		{`1e-99999999999999999999`, `0.0`},
		// but an integer stays an integer at any size
		{`1` + strings.Repeat("0", 400), `1` + strings.Repeat("0", 400)},
	}
	for _, c := range cases {
		got, err := Canonical([]byte(c.in))
		if err != nil {
			t.Errorf("Canonical(%s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("Canonical(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestCanonicalRejects(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	cases := map[string]string{
		`{"a":1,"a":2}`:      "duplicate key",
		`{"a":1,"\u0061":2}`: "duplicate key", // same key, spelled differently
		"\"\xff\"":           "invalid UTF-8",
		"{\"\xc3\":1}":       "invalid UTF-8",
		`"\ud800"`:           "lone surrogate",
		`"\ude00\ud83d"`:     "lone surrogate",
		`"\ud83dx"`:          "lone surrogate",
		// CPython's scanner knows NaN, Infinity and -Infinity and no
		// other spelling
		`-NaN`:                          "invalid number",
		`+Infinity`:                     "unexpected character",
		`- Infinity`:                    "invalid number",
		`-Inf`:                          "invalid number",
		`-I`:                            "invalid number",
		`nan`:                           "unexpected character",
		`inf`:                           "unexpected character",
		`infinity`:                      "unexpected character",
		`Inf`:                           "unexpected character",
		`NAN`:                           "unexpected character",
		`[NaN1]`:                        "expected ',' or ']'",
		`[Infinityx]`:                   "expected ',' or ']'",
		`-Infinity0`:                    "trailing data",
		`{"a":NaN,"a":1}`:               "duplicate key",
		deep:                            "nesting deeper",
		`01`:                            "leading zero",
		`1.`:                            "digit expected after decimal point",
		`.5`:                            "unexpected character",
		`1e`:                            "digit expected in exponent",
		`+1`:                            "unexpected character",
		`{"a":1,}`:                      "expected object key",
		`[1,]`:                          "unexpected character",
		`{"a" 1}`:                       "expected ':'",
		`{"a":1 "b":2}`:                 "expected ',' or '}'",
		`[1 2]`:                         "expected ',' or ']'",
		`"abc`:                          "unterminated string",
		"\"a\tb\"":                      "control character",
		`"\x41"`:                        "bad escape",
		`"\u12"`:                        "bad \\u escape",
		`{} {}`:                         "trailing data",
		``:                              "unexpected end",
		`tru`:                           "unexpected character",
		`{"a":truex}`:                   "expected ',' or '}'",
		strings.Repeat("1", 4302):       "too many digits",
		"-" + strings.Repeat("1", 4301): "too many digits",
	}
	for in, want := range cases {
		_, err := Canonical([]byte(in))
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), want) {
			t.Errorf("Canonical(%.40q): got %v, want error containing %q", in, err, want)
		}
	}
	// The digit limit is Python's own: 4300 digits still pass.
	for _, n := range []string{strings.Repeat("9", 4300), "-" + strings.Repeat("9", 4300)} {
		if _, err := Canonical([]byte(n)); err != nil {
			t.Errorf("4300-digit integer refused: %v", err)
		}
	}
	if _, err := Canonical([]byte(strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth))); err != nil {
		t.Errorf("nesting at the bound refused: %v", err)
	}
}

// pointOne + pointTwo is 0.1+0.2 computed in float64; as a constant expression
// Go would fold it exactly to 0.3.
var pointOne, pointTwo = 0.1, 0.2

func TestAppendPyFloatSpecials(t *testing.T) {
	cases := map[float64]string{
		0: "0.0", math.Copysign(0, -1): "-0.0", 1: "1.0", -1.5: "-1.5",
		1e16: "1e+16", 9999999999999998: "9999999999999998.0", 1e-4: "0.0001",
		pointOne + pointTwo: "0.30000000000000004", math.MaxFloat64: "1.7976931348623157e+308",
		math.SmallestNonzeroFloat64: "5e-324", 1e100: "1e+100", 1.23e-100: "1.23e-100",
	}
	for f, want := range cases {
		if got := string(AppendPyFloat(nil, f)); got != want {
			t.Errorf("AppendPyFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

// The kiosk writes amounts from integer sen without going through float
// formatting; that must agree with Python's repr(sen / 100) everywhere.
func TestAppendAmountMatchesRepr(t *testing.T) {
	check := func(sen int64) {
		want := string(AppendPyFloat(nil, float64(sen)/100))
		if got := string(appendAmount(nil, sen)); got != want {
			t.Fatalf("appendAmount(%d) = %s, repr gives %s", sen, got, want)
		}
		if back, ok := FloatToSen(float64(sen) / 100); !ok || back != sen {
			t.Fatalf("FloatToSen(%d/100) = %d, %v", sen, back, ok)
		}
	}
	for sen := int64(1); sen <= 200_000; sen++ {
		check(sen)
	}
	for sen := int64(MaxAmountSen); sen > MaxAmountSen-100_000; sen-- {
		check(sen)
	}
	for sen := int64(1); sen < MaxAmountSen; sen = sen*3 + 7 {
		check(sen)
	}
}

func TestFloatToSen(t *testing.T) {
	for _, f := range []float64{pointOne + pointTwo, 0.001, 12.345, math.NaN(), math.Inf(1), 1e12} {
		if sen, ok := FloatToSen(f); ok {
			t.Errorf("FloatToSen(%v) = %d; want refusal", f, sen)
		}
	}
}
