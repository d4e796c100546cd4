package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestOpenAPI checks that /openapi.json documents the whole REST surface of API.md.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	r := e.do(t, req{method: "GET", path: "/openapi.json"})
	r.want(t, http.StatusOK, "")
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Security    []map[string][]string
			RequestBody *struct {
				Content map[string]json.RawMessage `json:"content"`
			} `json:"requestBody"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
		Components struct {
			SecuritySchemes map[string]struct {
				Type  string `json:"type"`
				Flows struct {
					Password *struct {
						TokenURL string `json:"tokenUrl"`
					} `json:"password"`
				} `json:"flows"`
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi: got %q, want 3.1.x", doc.OpenAPI)
	}
	for _, op := range []struct {
		method, path string
		secured      bool
	}{
		{"post", "/api/v1/auth/register", false},
		{"post", "/api/v1/auth/login", false},
		{"post", "/api/v1/auth/refresh", false},
		{"post", "/api/v1/auth/logout", true},
		{"post", "/api/v1/auth/logout-all", true},
		{"get", "/api/v1/auth/sessions", true},
		{"delete", "/api/v1/auth/sessions/{id}", true},
		{"get", "/api/v1/users/me", true},
		{"get", "/api/v1/users", true},
		{"get", "/api/v1/users/{id}", true},
		{"get", "/api/v1/chats", true},
		{"post", "/api/v1/chats", true},
		{"get", "/api/v1/chats/discover", true},
		{"get", "/api/v1/chats/{id}", true},
		{"post", "/api/v1/chats/{id}/members", true},
		{"post", "/api/v1/chats/{id}/join", true},
		{"post", "/api/v1/chats/{id}/leave", true},
		{"get", "/api/v1/chats/{id}/messages", true},
		{"post", "/api/v1/chats/{id}/messages", true},
		{"post", "/api/v1/chats/{id}/read", true},
	} {
		o, ok := doc.Paths[op.path][op.method]
		if !ok {
			t.Errorf("%s %s is not documented", strings.ToUpper(op.method), op.path)
			continue
		}
		if op.secured && len(o.Security) == 0 {
			t.Errorf("%s %s: no security requirement", strings.ToUpper(op.method), op.path)
		}
		if op.secured {
			if _, ok := o.Responses["401"]; !ok {
				t.Errorf("%s %s: the 401 answer is not documented", strings.ToUpper(op.method), op.path)
			}
		}
	}
	// Every operation of the API reads or writes the database: each documents the 503 it
	// answers while the database is unreachable.
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/v1/") {
			continue
		}
		for method, o := range ops {
			if !strings.Contains(string(o.Responses["503"]), "unavailable") {
				t.Errorf("%s %s: the 503 unavailable answer is not documented", strings.ToUpper(method), path)
			}
		}
	}
	login := doc.Paths["/api/v1/auth/login"]["post"]
	if login.RequestBody == nil || login.RequestBody.Content["application/json"] == nil || login.RequestBody.Content["application/x-www-form-urlencoded"] == nil {
		t.Errorf("login: request bodies %+v, want JSON and form", login.RequestBody)
	}
	oauth := doc.Components.SecuritySchemes["oauth2"]
	if oauth.Type != "oauth2" || oauth.Flows.Password == nil || oauth.Flows.Password.TokenURL != "/api/v1/auth/login" {
		t.Errorf("oauth2 scheme: got %+v, want a password flow to /api/v1/auth/login", oauth)
	}
}

// TestDocsAndHealth checks the pages beside the API: the docs page works offline, health
// checks answer.
func TestDocsAndHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, string(b)
	}
	res, body := get("/docs")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "swagger-ui") {
		t.Errorf("GET /docs: got %d %q, want the HTML docs page", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if strings.Contains(body, "https://") || strings.Contains(body, "http://") {
		t.Errorf("the docs page loads something from the internet")
	}
	if res, _ := get("/docs/swagger-ui-bundle.js"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /docs/swagger-ui-bundle.js: got %d, want 200 from the embedded assets", res.StatusCode)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if res, body := get(path); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got %d %s, want 200", path, res.StatusCode, body)
		}
	}
}

// TestOpenAPICompressed: /openapi.json is served brotli or gzip by Accept-Encoding (Vary, an
// ETag per encoding), and each decompresses to the same document as the plain answer.
func TestOpenAPICompressed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	plain := e.do(t, req{method: "GET", path: "/openapi.json", header: map[string]string{"Accept-Encoding": "identity"}})
	plain.want(t, http.StatusOK, "")
	if enc := plain.header.Get("Content-Encoding"); enc != "" {
		t.Fatalf("identity asked, got Content-Encoding %q", enc)
	}
	if ct := plain.header.Get("Content-Type"); ct != "application/openapi+json" {
		t.Errorf("Content-Type %q", ct)
	}
	for _, enc := range []string{"gzip", "br"} {
		r := e.do(t, req{method: "GET", path: "/openapi.json", header: map[string]string{"Accept-Encoding": enc}})
		r.want(t, http.StatusOK, "")
		if got := r.header.Get("Content-Encoding"); got != enc {
			t.Fatalf("Accept-Encoding %s: Content-Encoding %q", enc, got)
		}
		if !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") || r.header.Get("ETag") == plain.header.Get("ETag") {
			t.Errorf("%s: Vary %q, ETag %q (plain %q)", enc, r.header.Get("Vary"), r.header.Get("ETag"), plain.header.Get("ETag"))
		}
		if len(r.body)*4 > len(plain.body) {
			t.Errorf("%s: %d bytes for %d plain", enc, len(r.body), len(plain.body))
		}
		var rd io.Reader
		if enc == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			rd = zr
		} else {
			rd = brotli.NewReader(bytes.NewReader(r.body))
		}
		got, err := io.ReadAll(rd)
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if !bytes.Equal(got, plain.body) {
			t.Errorf("%s: decompressed document differs from the plain one", enc)
		}
	}
}

// TestAnswersMatchOpenAPI: the chat answers validate against the schema /openapi.json gives for
// their status, null fields (a group's peer, a chat without messages' last_message, an unmuted
// chat's muted_until) and the 200s beside the 201s (an existing private chat, a retried send)
// included. A client generated from the document must be able to read what the server sends.
func TestAnswersMatchOpenAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	spec := e.openAPI(t)
	ann, ben, cat := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Cat")

	check := func(method, path string, r resp, status int) resp {
		t.Helper()
		r.want(t, status, "")
		spec.conforms(t, method, path, r)
		return r
	}
	private := map[string]any{"kind": "private", "member_ids": []int64{ben.ID}}
	dm := decode[wireChat](t, check("post", "/api/v1/chats",
		e.do(t, req{method: "POST", path: "/api/v1/chats", token: ann.Token, body: private}), http.StatusCreated))
	check("post", "/api/v1/chats", e.do(t, req{method: "POST", path: "/api/v1/chats", token: ann.Token, body: private}), http.StatusOK)
	group := decode[wireChat](t, check("post", "/api/v1/chats", e.do(t, req{method: "POST", path: "/api/v1/chats", token: ann.Token,
		body: map[string]any{"kind": "group", "title": "G"}}), http.StatusCreated))
	check("get", "/api/v1/chats", e.do(t, req{method: "GET", path: "/api/v1/chats", token: ann.Token}), http.StatusOK)
	check("get", "/api/v1/chats/{id}", e.do(t, req{method: "GET", path: chatPath(dm.ID, ""), token: ann.Token}), http.StatusOK)
	check("get", "/api/v1/chats/{id}", e.do(t, req{method: "GET", path: chatPath(group.ID, ""), token: ann.Token}), http.StatusOK)
	check("post", "/api/v1/chats/{id}/members", e.do(t, req{method: "POST", path: chatPath(group.ID, "/members"), token: ann.Token,
		body: map[string]int64{"user_id": cat.ID}}), http.StatusCreated)
	public := e.group(t, ben, "Public", true)
	check("post", "/api/v1/chats/{id}/join", e.do(t, req{method: "POST", path: chatPath(public, "/join"), token: ann.Token}), http.StatusOK)

	send := map[string]string{"body": "hi", "client_id": "c1"}
	check("post", "/api/v1/chats/{id}/messages", e.do(t, req{method: "POST", path: chatPath(dm.ID, "/messages"), token: ann.Token, body: send}), http.StatusCreated)
	check("post", "/api/v1/chats/{id}/messages", e.do(t, req{method: "POST", path: chatPath(dm.ID, "/messages"), token: ann.Token, body: send}), http.StatusOK)
	check("get", "/api/v1/chats", e.do(t, req{method: "GET", path: "/api/v1/chats", token: ben.Token}), http.StatusOK)
	check("patch", "/api/v1/chats/{id}/settings", e.do(t, req{method: "PATCH", path: chatPath(dm.ID, "/settings"), token: ann.Token,
		body: map[string]any{"muted_until": nil}}), http.StatusOK)
}

// apiDoc is the served /openapi.json, for validating answers against the schemas in it.
type apiDoc struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
}

func (e *env) openAPI(t *testing.T) apiDoc {
	t.Helper()
	r := e.do(t, req{method: "GET", path: "/openapi.json"})
	r.want(t, http.StatusOK, "")
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1's schema dialect
	if err := c.AddResource("openapi.json", raw); err != nil {
		t.Fatal(err)
	}
	return apiDoc{doc: decode[map[string]any](t, r), compiler: c}
}

// conforms checks that the answer's status is documented for the operation and that its body
// validates against the schema documented for that status.
func (d apiDoc) conforms(t *testing.T, method, path string, r resp) {
	t.Helper()
	if d.at("paths", path, method) == nil {
		t.Errorf("%s %s is not documented", method, path)
		return
	}
	st := strconv.Itoa(r.status)
	if d.at("paths", path, method, "responses", st) == nil {
		t.Errorf("%s %s: status %s is not documented", method, path, st)
		return
	}
	if len(r.body) == 0 {
		return
	}
	ct, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	if d.at("paths", path, method, "responses", st, "content", ct, "schema") == nil {
		t.Errorf("%s %s: status %s with %s: no schema documented", method, path, st, ct)
		return
	}
	pointer := "openapi.json#"
	for _, k := range []string{"paths", path, method, "responses", st, "content", ct, "schema"} {
		pointer += "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
	}
	schema, err := d.compiler.Compile(pointer)
	if err != nil {
		t.Fatalf("%s %s %s: the documented schema does not compile: %v", method, path, st, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if err := schema.Validate(v); err != nil {
		t.Errorf("%s %s %s: %v\nin %s", method, path, st, err, r.body)
	}
}

func (d apiDoc) at(keys ...string) any {
	var v any = d.doc
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// schema30Keys are the keywords an OpenAPI 3.0 Schema Object may hold (3.0.3, 4.7.24), and
// x- extensions.
var schema30Keys = map[string]bool{
	"title": true, "multipleOf": true, "maximum": true, "exclusiveMaximum": true, "minimum": true,
	"exclusiveMinimum": true, "maxLength": true, "minLength": true, "pattern": true, "maxItems": true,
	"minItems": true, "uniqueItems": true, "maxProperties": true, "minProperties": true, "required": true,
	"enum": true, "type": true, "allOf": true, "oneOf": true, "anyOf": true, "not": true, "items": true,
	"properties": true, "additionalProperties": true, "description": true, "format": true, "default": true,
	"nullable": true, "discriminator": true, "readOnly": true, "writeOnly": true, "xml": true,
	"externalDocs": true, "example": true, "deprecated": true,
}

var types30 = map[string]bool{"array": true, "boolean": true, "integer": true, "number": true, "object": true, "string": true}

// check30Schema reports what in a schema (and the schemas in it) OpenAPI 3.0 does not allow:
// a keyword it lacks (3.1's null type and type arrays among them), or a $ref with siblings
// (3.0 ignores them, so a nullable $ref would lose its nullable).
func check30Schema(t *testing.T, at string, v any) {
	t.Helper()
	s, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: schema %v is not an object", at, v)
		return
	}
	if _, ok := s["$ref"]; ok {
		if len(s) != 1 {
			t.Errorf("%s: $ref with siblings %v", at, s)
		}
		return
	}
	for k, x := range s {
		switch {
		case strings.HasPrefix(k, "x-"):
		case !schema30Keys[k]:
			t.Errorf("%s: keyword %q is not OpenAPI 3.0", at, k)
		case k == "type":
			if ty, _ := x.(string); !types30[ty] {
				t.Errorf("%s: type %v is not OpenAPI 3.0", at, x)
			}
		case k == "properties":
			props, _ := x.(map[string]any)
			for name, p := range props {
				check30Schema(t, at+"/properties/"+name, p)
			}
		case k == "items" || k == "not" || k == "additionalProperties" && x != true && x != false:
			check30Schema(t, at+"/"+k, x)
		case k == "allOf" || k == "anyOf" || k == "oneOf":
			alts, _ := x.([]any)
			for i, a := range alts {
				check30Schema(t, fmt.Sprintf("%s/%s/%d", at, k, i), a)
			}
		}
	}
}

// TestOpenAPI30: /openapi-3.0.json (and .yaml) is an OpenAPI 3.0 document for generators
// that read only 3.0: every schema in it uses 3.0's keywords only, and a field that may be
// null, such as a chat's peer (a $ref), says so as 3.0 does. huma's own downgrade left 3.1's
// anyOf [$ref, {type: null}] in it.
func TestOpenAPI30(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	r := e.do(t, req{method: "GET", path: "/openapi-3.0.json"})
	r.want(t, http.StatusOK, "")
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" || len(doc.Components.Schemas) < 20 || len(doc.Paths) < 20 {
		t.Fatalf("openapi %q, %d schemas, %d paths", doc.OpenAPI, len(doc.Components.Schemas), len(doc.Paths))
	}
	for name, s := range doc.Components.Schemas {
		check30Schema(t, "#/components/schemas/"+name, s)
	}
	// The media types' schemas of every request body and answer.
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "schema" {
					check30Schema(t, at+"/schema", e)
					continue
				}
				walk(at+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s/%d", at, i), e)
			}
		}
	}
	for p, ops := range doc.Paths {
		walk(p, ops)
	}
	peer, _ := doc.Components.Schemas["ChatSummary"].(map[string]any)["properties"].(map[string]any)["peer"].(map[string]any)
	if peer["nullable"] != true || peer["allOf"] == nil {
		t.Errorf("ChatSummary.peer = %v, want allOf [$ref Peer] with nullable: true", peer)
	}
	// The operations that keep their raw body take what they say, not octets (they answer 415).
	for _, op := range []struct{ path, method string }{{"/api/v1/auth/login", "post"}, {"/api/v1/chats/{id}/settings", "patch"}} {
		body, _ := doc.Paths[op.path][op.method].(map[string]any)["requestBody"].(map[string]any)
		content, _ := body["content"].(map[string]any)
		if _, ok := content["application/octet-stream"]; ok || len(content) == 0 {
			t.Errorf("%s %s takes %v, want its declared types only", op.method, op.path, content)
		}
	}
	y := e.do(t, req{method: "GET", path: "/openapi-3.0.yaml"})
	y.want(t, http.StatusOK, "")
	if !bytes.Contains(y.body, []byte("openapi: 3.0.3")) || !bytes.Contains(y.body, []byte("nullable: true")) || bytes.Contains(y.body, []byte("type: \"null\"")) || bytes.Contains(y.body, []byte("type: null")) {
		t.Errorf("/openapi-3.0.yaml is not the 3.0 document:\n%.400s", y.body)
	}
}
