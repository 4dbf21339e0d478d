// A peer for strata's template engine (src/format): runs Go's own
// text/template over the same cases and prints what Go prints.
//
// stdin: a JSON array of cases {template, data, type, useNumber, missingKey, docker}.
// stdout: a JSON array of results {out, err, phase}.
//
// data is decoded as encoding/json decodes it: into interface{} (numbers
// float64, or json.Number with useNumber), or, when type is given, into a
// Go type built at run time with reflect (StructOf, SliceOf, MapOf,
// PointerTo) from the same description strata's GoType uses. docker's
// template functions (docker/cli templates/templates.go) are written here
// again, as small as they are there.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
)

type typeDesc struct {
	Kind   string      `json:"kind"`
	Name   string      `json:"name"`
	Elem   *typeDesc   `json:"elem"`
	Key    *typeDesc   `json:"key"`
	Fields []fieldDesc `json:"fields"`
}

type fieldDesc struct {
	Name      string    `json:"name"`
	Type      *typeDesc `json:"type"`
	JSON      string    `json:"json"`
	Omitempty bool      `json:"omitempty"`
}

type testCase struct {
	Template   string          `json:"template"`
	Data       json.RawMessage `json:"data"`
	Type       *typeDesc       `json:"type"`
	UseNumber  bool            `json:"useNumber"`
	MissingKey string          `json:"missingKey"`
	Docker     bool            `json:"docker"`
	// Tabwriter passes the output through text/tabwriter as docker 20.10 set it up.
	Tabwriter bool `json:"tabwriter"`
}

type result struct {
	Out   string `json:"out"`
	Err   string `json:"err,omitempty"`
	Phase string `json:"phase,omitempty"`
}

var basicTypes = map[string]reflect.Type{
	"bool":    reflect.TypeOf(false),
	"int":     reflect.TypeOf(0),
	"int8":    reflect.TypeOf(int8(0)),
	"int16":   reflect.TypeOf(int16(0)),
	"int32":   reflect.TypeOf(int32(0)),
	"int64":   reflect.TypeOf(int64(0)),
	"uint":    reflect.TypeOf(uint(0)),
	"uint8":   reflect.TypeOf(uint8(0)),
	"uint16":  reflect.TypeOf(uint16(0)),
	"uint32":  reflect.TypeOf(uint32(0)),
	"uint64":  reflect.TypeOf(uint64(0)),
	"float32": reflect.TypeOf(float32(0)),
	"float64": reflect.TypeOf(float64(0)),
	"string":  reflect.TypeOf(""),
}

func buildType(d *typeDesc) reflect.Type {
	if t, ok := basicTypes[d.Name]; ok {
		return t
	}
	switch d.Kind {
	case "interface":
		return reflect.TypeOf((*interface{})(nil)).Elem()
	case "slice":
		return reflect.SliceOf(buildType(d.Elem))
	case "map":
		return reflect.MapOf(buildType(d.Key), buildType(d.Elem))
	case "pointer":
		return reflect.PointerTo(buildType(d.Elem))
	case "struct":
		fields := make([]reflect.StructField, len(d.Fields))
		for i, f := range d.Fields {
			fields[i] = reflect.StructField{Name: f.Name, Type: buildType(f.Type)}
			if f.JSON != "" || f.Omitempty {
				name := f.JSON
				if name == "" {
					name = f.Name
				}
				if f.Omitempty {
					name += ",omitempty"
				}
				fields[i].Tag = reflect.StructTag(`json:"` + name + `"`)
			}
		}
		return reflect.StructOf(fields)
	}
	panic("unknown kind " + d.Kind)
}

var dockerFuncs = template.FuncMap{
	"json": func(v interface{}) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": strings.Title,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(source string, prefix, suffix int) string {
		if source == "" {
			return source
		}
		return strings.Repeat(" ", prefix) + source + strings.Repeat(" ", suffix)
	},
	"truncate": func(source string, length int) string {
		if len(source) < length {
			return source
		}
		return source[:length]
	},
}

func runCase(c testCase) (res result) {
	defer func() {
		if r := recover(); r != nil {
			res = result{Err: fmt.Sprint("panic: ", r), Phase: "panic"}
		}
	}()
	t := template.New("")
	if c.Docker {
		t = t.Funcs(dockerFuncs)
	}
	if c.MissingKey != "" {
		t = t.Option("missingkey=" + c.MissingKey)
	}
	t, err := t.Parse(c.Template)
	if err != nil {
		return result{Err: err.Error(), Phase: "parse"}
	}
	var data interface{}
	if c.Type != nil {
		p := reflect.New(buildType(c.Type))
		if err := json.Unmarshal(c.Data, p.Interface()); err != nil {
			return result{Err: "bad data: " + err.Error(), Phase: "data"}
		}
		data = p.Elem().Interface()
	} else {
		dec := json.NewDecoder(bytes.NewReader(c.Data))
		if c.UseNumber {
			dec.UseNumber()
		}
		if err := dec.Decode(&data); err != nil {
			return result{Err: "bad data: " + err.Error(), Phase: "data"}
		}
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return result{Out: out.String(), Err: err.Error(), Phase: "exec"}
	}
	if c.Tabwriter {
		var table bytes.Buffer
		w := tabwriter.NewWriter(&table, 10, 1, 3, ' ', 0)
		w.Write(out.Bytes())
		w.Flush()
		return result{Out: table.String()}
	}
	return result{Out: out.String()}
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		results[i] = runCase(c)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
