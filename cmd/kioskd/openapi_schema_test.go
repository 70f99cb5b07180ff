package main

// A small reader of docs/control-api.json for the conformance test: the
// operations it lists and a walker that holds a JSON value against one of
// its schemas. It knows the parts of OpenAPI 3.0 the document uses ($ref,
// allOf, oneOf, nullable, type, properties, required,
// additionalProperties, items, enum, pattern, format date-time), no more.
// The document is JSON, not YAML, so that reading it needs no dependency.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

type apiDoc struct {
	paths   map[string]any
	schemas map[string]any
}

func loadAPIDoc(t *testing.T, path string) *apiDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI    string         `json:"openapi"`
		Paths      map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Fatalf("%s: openapi %q, want 3.0.x", path, doc.OpenAPI)
	}
	return &apiDoc{paths: doc.Paths, schemas: doc.Components.Schemas}
}

// ops returns every operation as a ServeMux pattern, "GET /v1/status".
func (d *apiDoc) ops() []string {
	var out []string
	for path, item := range d.paths {
		for method := range item.(map[string]any) {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// op returns the operation object of "METHOD /path", or nil.
func (d *apiDoc) op(pattern string) map[string]any {
	method, path, _ := strings.Cut(pattern, " ")
	item, _ := d.paths[path].(map[string]any)
	o, _ := item[strings.ToLower(method)].(map[string]any)
	return o
}

// statuses lists the operation's explicitly documented status codes
// (not "default").
func (d *apiDoc) statuses(pattern string) []string {
	var out []string
	for code := range d.op(pattern)["responses"].(map[string]any) {
		if code != "default" {
			out = append(out, code)
		}
	}
	slices.Sort(out)
	return out
}

// response returns the documented response for code, or nil.
func (d *apiDoc) response(pattern, code string) map[string]any {
	r, _ := d.op(pattern)["responses"].(map[string]any)[code].(map[string]any)
	return r
}

// params returns the names of the operation's parameters that are in
// where ("query", "header", "path").
func (d *apiDoc) params(pattern, where string) []string {
	var out []string
	ps, _ := d.op(pattern)["parameters"].([]any)
	for _, p := range ps {
		pm := p.(map[string]any)
		if pm["in"] == where {
			out = append(out, pm["name"].(string))
		}
	}
	return out
}

// requestSchema returns the operation's JSON request body schema, or nil.
func (d *apiDoc) requestSchema(pattern string) map[string]any {
	rb, _ := d.op(pattern)["requestBody"].(map[string]any)
	c, _ := rb["content"].(map[string]any)
	mt, _ := c["application/json"].(map[string]any)
	s, _ := mt["schema"].(map[string]any)
	return s
}

// resolve follows $ref.
func (d *apiDoc) resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		next, found := d.schemas[name].(map[string]any)
		if !ok || !found {
			panic("unresolvable $ref " + ref)
		}
		s = next
	}
}

// decodeJSON decodes b keeping numbers as json.Number, so that an
// integer is told apart from a fraction.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// check returns every way v departs from schema s, each prefixed with
// where it is in v. An object whose schema lists properties is held to
// them: a field the document does not name is reported, so that the
// document stays complete.
func (d *apiDoc) check(where string, s map[string]any, v any) []string {
	s = d.resolve(s)
	if v == nil {
		if s["nullable"] == true {
			return nil
		}
		return []string{where + ": null, not documented as nullable"}
	}
	if alts, ok := s["oneOf"].([]any); ok {
		var why []string
		for i, a := range alts {
			errs := d.check(where, a.(map[string]any), v)
			if len(errs) == 0 {
				return nil
			}
			why = append(why, fmt.Sprintf("oneOf[%d]: %s", i, strings.Join(errs, "; ")))
		}
		return []string{where + ": matches no alternative: " + strings.Join(why, " | ")}
	}
	if parts, ok := s["allOf"].([]any); ok {
		s = d.merge(parts)
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, where+": "+fmt.Sprintf(format, args...)) }
	switch s["type"] {
	case nil:
		// Any JSON value (a plan as the terminal signed it).
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			bad("%T, want object", v)
			break
		}
		props, _ := s["properties"].(map[string]any)
		extra, _ := s["additionalProperties"].(map[string]any)
		for k, fv := range obj {
			switch ps, ok := props[k].(map[string]any); {
			case ok:
				errs = append(errs, d.check(where+"."+k, ps, fv)...)
			case extra != nil:
				errs = append(errs, d.check(where+"."+k, extra, fv)...)
			default:
				bad("field %q is not in the document", k)
			}
		}
		req, _ := s["required"].([]any)
		for _, k := range req {
			if _, ok := obj[k.(string)]; !ok {
				bad("required field %q missing", k)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			bad("%T, want array", v)
			break
		}
		items, _ := s["items"].(map[string]any)
		for i, iv := range arr {
			errs = append(errs, d.check(fmt.Sprintf("%s[%d]", where, i), items, iv)...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("%T %v, want string", v, v)
			break
		}
		if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, any(str)) {
			bad("%q not in enum %v", str, enum)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			bad("%q does not match %s", str, p)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				bad("%q is no date-time: %v", str, err)
			}
		}
	case "integer", "number":
		n, ok := v.(json.Number)
		if !ok {
			bad("%T %v, want %s", v, v, s["type"])
			break
		}
		if _, err := n.Int64(); err != nil && s["type"] == "integer" {
			bad("%s, want integer", n)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("%T %v, want boolean", v, v)
		}
	default:
		bad("schema type %v unknown to this walker", s["type"])
	}
	return errs
}

// merge folds allOf parts into one schema: a single part (a nullable
// $ref) as it is, object parts with their properties and required
// fields joined.
func (d *apiDoc) merge(parts []any) map[string]any {
	if len(parts) == 1 {
		return d.resolve(parts[0].(map[string]any))
	}
	props := map[string]any{}
	var req []any
	for _, p := range parts {
		ps := d.resolve(p.(map[string]any))
		for k, v := range ps["properties"].(map[string]any) {
			props[k] = v
		}
		r, _ := ps["required"].([]any)
		req = append(req, r...)
	}
	return map[string]any{"type": "object", "properties": props, "required": req}
}

func TestAPIDocWalker(t *testing.T) {
	d := loadAPIDoc(t, "../../docs/control-api.json")
	ok := func(name, js string) {
		v, err := decodeJSON([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		if errs := d.check(name, map[string]any{"$ref": "#/components/schemas/" + name}, v); len(errs) > 0 {
			t.Errorf("%s %s: %v", name, js, errs)
		}
	}
	notOK := func(name, js string) {
		v, _ := decodeJSON([]byte(js))
		if errs := d.check(name, map[string]any{"$ref": "#/components/schemas/" + name}, v); len(errs) == 0 {
			t.Errorf("%s %s: passed, want a failure", name, js)
		}
	}
	ok("Check", `{"name":"leds","ok":true}`)
	notOK("Check", `{"name":"leds","ok":"yes"}`)      // wrong type
	notOK("Check", `{"name":"leds"}`)                 // required missing
	notOK("Check", `{"name":"leds","ok":true,"x":1}`) // undocumented field
	notOK("Check", `{"name":"fan","ok":true}`)        // not in enum
	ok("Amount", `"12.50"`)
	notOK("Amount", `12.5`)
	notOK("POSStats", `{"sessions":1.5}`)
	poll := `{"time":"2026-12-01T18:00:00.123456789Z","unit":["112","012"],"reply":["100"],"latency_us":31,"gap":false,"text":"POLL -> ACK"}`
	ok("MDBTraceLine", poll)
	ok("MDBTraceLine", `{"dropped":12}`)
	notOK("MDBTraceLine", `{"dropped":12,"text":"POLL -> ACK"}`)        // neither alternative
	notOK("MDBTraceLine", strings.Replace(poll, `"112"`, `"0x112"`, 1)) // not a 9-bit word
}
