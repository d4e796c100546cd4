package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
