package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

// schemaPrefix is where huma's registry keeps the named schemas of the OpenAPI document.
const schemaPrefix = "#/components/schemas/"

// nullablePointers makes the schema of every pointer field that encoding/json writes as null
// (a pointer without omitempty: ChatSummary's peer, last_message and muted_until) allow null.
// huma marks only pointers to plain scalars so; a pointer to a struct (a $ref) it cannot mark
// at all, and a pointer to an aliased type (chat.Time) loses the mark. A $ref becomes
// anyOf [$ref, null], a scalar gets type [T, "null"]. It runs over every registered type, once
// every operation is registered, so a new answer type is covered without a tag.
func nullablePointers(reg huma.Registry) {
	for name, s := range reg.Map() {
		t := reg.TypeFromRef(schemaPrefix + name)
		if t == nil || t.Kind() != reflect.Struct || s.Properties == nil {
			continue
		}
		for _, f := range reflect.VisibleFields(t) {
			if !f.IsExported() || f.Type.Kind() != reflect.Pointer {
				continue
			}
			jname, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if jname == "-" && opts == "" || hasOption(opts, "omitempty") || hasOption(opts, "omitzero") {
				continue
			}
			if jname == "" {
				jname = f.Name
			}
			p := s.Properties[jname]
			switch {
			case p == nil || p.Nullable || p.AnyOf != nil:
			case p.Ref != "":
				s.Properties[jname] = &huma.Schema{Description: p.Description,
					AnyOf: []*huma.Schema{{Ref: p.Ref}, {Type: "null"}}}
			case p.Type != "" && p.Type != huma.TypeObject && p.Type != huma.TypeArray:
				p.Nullable = true
			}
		}
	}
}

func hasOption(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// withAnswer documents a success answer besides the operation's default one (huma documents
// only that): a 200 where the default is 201, with its JSON body.
func withAnswer(rs map[string]*huma.Response, status int, description string, body *huma.Schema) map[string]*huma.Response {
	rs[strconv.Itoa(status)] = &huma.Response{Description: description,
		Content: map[string]*huma.MediaType{"application/json": {Schema: body}}}
	return rs
}

// openAPI30 is huma's OpenAPI 3.0 downgrade of the document with what it leaves as 3.1 made
// 3.0 (see to30).
func openAPI30(api huma.API) ([]byte, error) {
	b, err := api.OpenAPI().Downgrade()
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	to30(doc)
	return json.Marshal(doc)
}

// to30 makes 3.0 what huma's downgrade leaves 3.1 in a document: a nullable $ref,
// anyOf [$ref, {type: null}] (nullablePointers), becomes allOf [$ref] with nullable: true (3.0
// has no null type); any other anyOf with a null member loses it and is nullable; a $ref with
// siblings (a description) becomes allOf [$ref] beside them (3.0 ignores a $ref's siblings);
// contentMediaType goes (3.0 says format: binary, which is there).
func to30(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "contentMediaType")
		if ref, ok := x["$ref"]; ok && len(x) > 1 {
			delete(x, "$ref")
			x["allOf"] = []any{map[string]any{"$ref": ref}}
		}
		if alts, ok := x["anyOf"].([]any); ok {
			kept := make([]any, 0, len(alts))
			for _, a := range alts {
				if m, ok := a.(map[string]any); ok && m["type"] == "null" && len(m) == 1 {
					x["nullable"] = true
					continue
				}
				kept = append(kept, a)
			}
			switch {
			case len(kept) == len(alts):
			case len(kept) == 1:
				delete(x, "anyOf")
				x["allOf"] = kept
			default:
				x["anyOf"] = kept
			}
		}
		for _, e := range x {
			to30(e)
		}
	case []any:
		for _, e := range x {
			to30(e)
		}
	}
}

// declaredBodiesOnly removes the application/octet-stream that huma lists beside JSON in the
// request body of an operation whose input has a RawBody (kept to tell an absent field from a
// null one, or to read a login form): those operations refuse octets (415).
func declaredBodiesOnly(o *huma.OpenAPI) {
	for _, p := range o.Paths {
		for _, op := range operations(p) {
			if op.RequestBody == nil {
				continue
			}
			if _, json := op.RequestBody.Content["application/json"]; json {
				delete(op.RequestBody.Content, "application/octet-stream")
			}
		}
	}
}

// operations are a path's operations.
func operations(p *huma.PathItem) []*huma.Operation {
	var ops []*huma.Operation
	for _, op := range []*huma.Operation{p.Get, p.Put, p.Post, p.Delete, p.Options, p.Head, p.Patch, p.Trace} {
		if op != nil {
			ops = append(ops, op)
		}
	}
	return ops
}

// frameworkAnswers documents the answers given before a handler runs, on every operation that
// can get them: 422 invalid for a parameter or body that fails its schema (a body missing or
// not JSON included); for an operation that takes a body, 408 request_timeout (a body that
// stalls), 413 too_large (MaxBodyBytes) and 415 unsupported_media_type (a content type it does
// not read); for every operation, 403 forbidden (a state-changing request carrying our cookies
// from an Origin that is not allowed: authenticate; any request to a loopback address under a
// name that is not the server's: localHost); for every operation of the API, 503
// unavailable (with Retry-After) while the database cannot be reached, since each reads or
// writes it. Each operation's own list then names only what its handler answers, and a client
// generated from the document still knows every answer.
func frameworkAnswers(o *huma.OpenAPI) {
	for path, p := range o.Paths {
		for _, op := range operations(p) {
			if strings.HasPrefix(path, "/api/") {
				documentCode(op, chat.CodeUnavailable)
			}
			if len(op.Parameters) > 0 || op.RequestBody != nil {
				documentCode(op, chat.CodeInvalid)
			}
			// A foreign Origin (a state-changing request) or, on a loopback address, a foreign
			// Host (any request: localHost).
			documentCode(op, chat.CodeForbidden)
			if op.RequestBody != nil {
				documentCode(op, chat.CodeRequestTimeout)
				documentCode(op, chat.CodeTooLarge)
				documentCode(op, codeOf(http.StatusUnsupportedMediaType))
			}
		}
	}
}

// documentCode adds code to the operation's documented answers: to the list of codes of its
// status (errorResponses' "(code: a, b)"), or as a new answer.
func documentCode(op *huma.Operation, code string) {
	status := strconv.Itoa(statusOfAnyCode(code))
	r := op.Responses[status]
	if r == nil {
		if op.Responses == nil {
			op.Responses = map[string]*huma.Response{}
		}
		op.Responses[status] = errorResponses(code)[status]
		return
	}
	head, list, ok := strings.Cut(strings.TrimSuffix(r.Description, ")"), " (code: ")
	if !ok {
		return // a description of its own (not a problem document's codes)
	}
	codes := strings.Split(list, ", ")
	if slices.Contains(codes, code) {
		return
	}
	r.Description = head + " (code: " + strings.Join(append(codes, code), ", ") + ")"
}
