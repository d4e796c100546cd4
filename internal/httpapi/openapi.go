package httpapi

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
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
