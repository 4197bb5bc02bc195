package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyTypeError is a value of the wrong type at a dotted key; with a nil err, a
// key that nothing decodes (decoding a table key by key marks all its keys as
// decoded, so toml's Undecoded no longer lists such a key).
type keyTypeError struct {
	key string
	err error
}

// decodeByKey decodes the file's top-level tables key by key. toml.Decode stops
// at the first value of the wrong type; a person fixing a config wants every
// problem in one pass, so Parse falls back to this after such an error: each
// value that cannot be decoded is one problem, and the rest is decoded and
// checked as usual.
func decodeByKey(md toml.MetaData, top map[string]toml.Primitive, f *file) []keyTypeError {
	var errs []keyTypeError
	rv := reflect.ValueOf(f).Elem()
	for _, name := range sortedKeys(top) {
		dst, ok := fieldByTag(rv, name)
		if !ok {
			continue // an unknown key: reportUnknown names it
		}
		if !isTable(dst) {
			if err := md.PrimitiveDecode(top[name], dst.Addr().Interface()); err != nil {
				errs = append(errs, keyTypeError{name, err})
			}
			continue
		}
		errs = append(errs, decodeTable(md, top[name], dst, name+".")...)
	}
	return errs
}

// decodeTable decodes the table raw into the struct dst one key at a time;
// prefix goes before the keys of the errors.
func decodeTable(md toml.MetaData, raw toml.Primitive, dst reflect.Value, prefix string) []keyTypeError {
	// Decoding a value that is not a table into a map succeeds, empty: its type
	// is checked first.
	var val any
	if err := md.PrimitiveDecode(raw, &val); err != nil {
		return []keyTypeError{{strings.TrimSuffix(prefix, "."), err}}
	}
	if _, ok := val.(map[string]any); !ok {
		return []keyTypeError{{strings.TrimSuffix(prefix, "."), fmt.Errorf("%s where a table belongs", tomlType(val))}}
	}
	var keys map[string]toml.Primitive
	if err := md.PrimitiveDecode(raw, &keys); err != nil {
		return []keyTypeError{{strings.TrimSuffix(prefix, "."), err}}
	}
	var errs []keyTypeError
	for _, k := range sortedKeys(keys) {
		field, ok := fieldByTag(dst, k)
		if !ok {
			errs = append(errs, keyTypeError{key: prefix + k})
			continue
		}
		if isTable(field) {
			errs = append(errs, decodeTable(md, keys[k], field, prefix+k+".")...)
			continue
		}
		if err := md.PrimitiveDecode(keys[k], field.Addr().Interface()); err != nil {
			field.SetZero()
			errs = append(errs, keyTypeError{prefix + k, err})
		}
	}
	return errs
}

// problem words a keyTypeError without toml's prefix and position.
func (e keyTypeError) problem() string {
	msg := e.err.Error()
	if _, why, ok := strings.Cut(msg, "): "); ok {
		msg = why
	}
	return typeWhy(strings.TrimPrefix(msg, "toml: "))
}

// decodeKeys decodes the table raw into the struct dst points to. On a value of
// the wrong type it goes on key by key and returns each such key (the keys dst
// has no field for are left to whoever decodes them); a nil result means all
// went well.
func decodeKeys(md toml.MetaData, raw toml.Primitive, dst any) []keyTypeError {
	err := md.PrimitiveDecode(raw, dst)
	if err == nil {
		return nil
	}
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return []keyTypeError{{err: err}}
	}
	var out []keyTypeError
	for _, e := range decodeTable(md, raw, rv.Elem(), "") {
		if e.err != nil {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return []keyTypeError{{err: err}}
	}
	return out
}

var (
	textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()
	tomlUnmarshaler = reflect.TypeFor[toml.Unmarshaler]()
)

// isTable reports whether v is decoded from a TOML table key by key: a struct
// that does not decode itself (from text, or from any TOML value).
func isTable(v reflect.Value) bool {
	t := v.Addr().Type()
	return v.Kind() == reflect.Struct && !t.Implements(textUnmarshaler) && !t.Implements(tomlUnmarshaler)
}

// fieldByTag finds the field of struct v that toml key name decodes into. As in
// toml (and encoding/json), a field of v itself wins over one of an embedded
// struct.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	var embedded []int
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if tag == "-" {
			continue
		}
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct {
			embedded = append(embedded, i)
			continue
		}
		if tag == name || tag == "" && strings.EqualFold(sf.Name, name) {
			return v.Field(i), true
		}
	}
	for _, i := range embedded {
		if f, ok := fieldByTag(v.Field(i), name); ok {
			return f, true
		}
	}
	return reflect.Value{}, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
