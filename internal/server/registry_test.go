package server

import (
	"reflect"
	"strings"
	"testing"
)

// A reload keeps a route's running handler only when its options are Equal; a
// key that Equal forgot would make a changed config silently keep the old
// handler. Every key of every kind must make two options differ, except those
// the server applies around the handler (request_buffering, sendfile_root),
// which must not restart its workers.
func TestEqualSeesEveryKey(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.Name, func(t *testing.T) {
			base := k.Options()
			if !base.Equal(k.Options()) {
				t.Fatal("two empty options are not Equal")
			}
			for _, f := range taggedFields(reflect.TypeOf(base).Elem(), nil) {
				changed := k.Options()
				v := reflect.ValueOf(changed).Elem().FieldByIndex(f.Index)
				alter(t, v)
				key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
				applied := key == "request_buffering" || key == "sendfile_root"
				if differ := !base.Equal(changed) || !changed.Equal(base); differ == applied {
					t.Errorf("key %q: Equal says options differing in it differ: %v", key, differ)
				}
			}
		})
	}
}

// taggedFields lists the fields that are route keys, those of embedded structs
// included, with their index paths.
func taggedFields(t reflect.Type, index []int) []reflect.StructField {
	var out []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		f.Index = append(append([]int(nil), index...), i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case f.Anonymous && name == "":
			out = append(out, taggedFields(f.Type, f.Index)...)
		case name != "" && name != "-":
			out = append(out, f)
		}
	}
	return out
}

// alter gives v a value other than its zero value.
func alter(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.ValueOf("x")))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.ValueOf("K"), reflect.ValueOf("v"))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		alter(t, p.Elem())
		if p.Elem().Kind() == reflect.Bool {
			p.Elem().SetBool(false) // nil means true for request_buffering
		}
		v.Set(p)
	default:
		t.Fatalf("no way to alter a %s", v.Type())
	}
}
