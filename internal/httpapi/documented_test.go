package httpapi_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
)

// documentedOp is one operation of the server's /openapi.json: its method, its path as a
// pattern, and the codes documented for each error status ("(code: a, b)").
type documentedOp struct {
	method string
	path   *regexp.Regexp
	codes  map[int][]string
	ok     map[int]bool // statuses below 400
}

var pathParam = regexp.MustCompile(`\\\{[^}/]+\\\}`)

// documentedOps reads the env's OpenAPI document once (the one /openapi.json serves, taken
// from the server itself: marshalling and parsing it for every test server cost more).
func (e *env) documentedOps(t *testing.T) []documentedOp {
	t.Helper()
	e.docsOnce.Do(func() {
		for path, p := range e.ts.API.API().OpenAPI().Paths {
			re := regexp.MustCompile("^" + pathParam.ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + "$")
			for _, op := range []*huma.Operation{p.Get, p.Put, p.Post, p.Delete, p.Patch} {
				if op == nil {
					continue
				}
				d := documentedOp{method: op.Method, path: re, codes: map[int][]string{}, ok: map[int]bool{}}
				for st, r := range op.Responses {
					n, err := strconv.Atoi(st)
					if err != nil {
						continue
					}
					if n < 400 {
						d.ok[n] = true
						continue
					}
					_, list, _ := strings.Cut(strings.TrimSuffix(r.Description, ")"), "(code: ")
					d.codes[n] = strings.Split(list, ", ")
				}
				e.docs = append(e.docs, d)
			}
		}
	})
	return e.docs
}

// checkDocumented fails the test when an answer of an operation in /openapi.json has a status,
// or a problem code, that the document does not list for that operation: a client generated
// from the document must know every answer the server can give. Every request of the HTTP
// tests passes through it (env.do), the error paths included.
func (e *env) checkDocumented(t *testing.T, r req, out resp) {
	t.Helper()
	path, _, _ := strings.Cut(r.path, "?")
	if !strings.HasPrefix(path, "/api/") || r.method == http.MethodOptions { // OPTIONS: CORS preflights
		return
	}
	for _, op := range e.documentedOps(t) {
		if op.method != r.method || !op.path.MatchString(path) {
			continue
		}
		if out.status < 400 {
			if !op.ok[out.status] {
				t.Errorf("%s %s: answered %d, which /openapi.json does not document for %s", r.method, r.path, out.status, op.path)
			}
			return
		}
		codes, ok := op.codes[out.status]
		if !ok {
			t.Errorf("%s %s: answered %d, which /openapi.json does not document for %s: %s", r.method, r.path, out.status, op.path, out.body)
			return
		}
		var p problem
		if json.Unmarshal(out.body, &p) == nil && !slices.Contains(codes, p.Code) {
			t.Errorf("%s %s: answered %d %s, but /openapi.json lists only %q for that status", r.method, r.path, out.status, p.Code, codes)
		}
		return
	}
	// Not an operation of the document (an unknown path or method: the router's 404 or 405).
	if out.status != http.StatusNotFound && out.status != http.StatusMethodNotAllowed {
		t.Errorf("%s %s: answered %d, but /openapi.json has no such operation", r.method, r.path, out.status)
	}
}
