package validation

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// JSONPath rewrites a field path in protovalidate's form, with proto field names
// ("profile.display_name", "items[0].unit_price", `labels["k"]`), into the names a JSON
// client writes ("profile.displayName", "items[0].unitPrice"), walking md. A segment
// that names no field of its message, and everything after it, is kept as it is.
func JSONPath(md protoreflect.MessageDescriptor, path string) string {
	var out strings.Builder
	for i := 0; i < len(path); {
		switch path[i] {
		case '.':
			out.WriteByte('.')
			i++
		case '[':
			// An index or a map key, copied as written; a key may hold ']' only quoted.
			end := subscriptEnd(path, i)
			out.WriteString(path[i:end])
			i = end
		default:
			end := i
			for end < len(path) && path[end] != '.' && path[end] != '[' {
				end++
			}
			name := path[i:end]
			var fd protoreflect.FieldDescriptor
			if md != nil {
				fd = md.Fields().ByName(protoreflect.Name(name))
			}
			if fd == nil {
				out.WriteString(path[i:])
				return out.String()
			}
			out.WriteString(fd.JSONName())
			md = fd.Message()
			if fd.IsMap() {
				md = fd.MapValue().Message()
			}
			i = end
		}
	}
	return out.String()
}

// subscriptEnd is the index just past the subscript that starts at path[i] == '['.
func subscriptEnd(path string, i int) int {
	quoted := false
	for j := i + 1; j < len(path); j++ {
		switch {
		case path[j] == '\\' && quoted:
			j++
		case path[j] == '"':
			quoted = !quoted
		case path[j] == ']' && !quoted:
			return j + 1
		}
	}
	return len(path)
}
