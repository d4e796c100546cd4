package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
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

// documentedOps reads the env's /openapi.json once.
func (e *env) documentedOps(t *testing.T) []documentedOp {
	t.Helper()
	e.docsOnce.Do(func() {
		res, err := e.srv.Client().Get(e.srv.URL + "/openapi.json")
		if err != nil {
			e.docsErr = err
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			e.docsErr = err
			return
		}
		var doc struct {
			Paths map[string]map[string]struct {
				Responses map[string]struct {
					Description string `json:"description"`
				} `json:"responses"`
			} `json:"paths"`
		}
		if e.docsErr = json.Unmarshal(b, &doc); e.docsErr != nil {
			return
		}
		for path, ops := range doc.Paths {
			re := regexp.MustCompile("^" + pathParam.ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + "$")
			for method, op := range ops {
				d := documentedOp{method: strings.ToUpper(method), path: re, codes: map[int][]string{}, ok: map[int]bool{}}
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
	if e.docsErr != nil {
		t.Fatalf("read /openapi.json: %v", e.docsErr)
	}
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
