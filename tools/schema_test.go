package tools

import (
	"encoding/json"
	"testing"
)

func TestSchemaHash(t *testing.T) {
	a, err := SchemaHash(json.RawMessage(`{"type":"object","properties":{"x":{"type":"number","maximum":1e400}}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := SchemaHash(json.RawMessage("{ \"properties\": {\"x\": {\"maximum\": 1e400, \"type\": \"number\"}},\n \"type\": \"object\" }"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("key order or whitespace changed the hash")
	}
	c, _ := SchemaHash(json.RawMessage(`{"type":"object","properties":{"x":{"type":"string"}}}`))
	if a == c {
		t.Error("different schemas hash the same")
	}
	if _, err := SchemaHash(json.RawMessage(`{"a":1} x`)); err == nil {
		t.Error("trailing data accepted")
	}
	canon, _ := CanonicalJSON(json.RawMessage(`{"b":"<&>","a":12345678901234567890}`))
	if string(canon) != `{"a":12345678901234567890,"b":"<&>"}` {
		t.Errorf("canonical = %s", canon)
	}
}

func TestAddProperty(t *testing.T) {
	prop := json.RawMessage(`{"type":"number"}`)
	cases := []struct{ in, want string }{
		{`{"type":"object","properties":{"z":{"type":"string"},"a":{}},"required":["z"]}`,
			`{"type":"object","properties":{"z":{"type":"string"},"a":{},"_c":{"type":"number"}},"required":["z"]}`},
		{`{"type":"object"}`, `{"type":"object","properties":{"_c":{"type":"number"}}}`},
		{`{"type":"object","properties":{}}`, `{"type":"object","properties":{"_c":{"type":"number"}}}`},
	}
	for _, tc := range cases {
		got, added, err := AddProperty(json.RawMessage(tc.in), "_c", prop)
		if err != nil || !added || string(got) != tc.want {
			t.Errorf("AddProperty(%s) = %s, %v, %v; want %s", tc.in, got, added, err, tc.want)
		}
	}
	in := `{"properties":{"_c":{"type":"string"}}}`
	got, added, err := AddProperty(json.RawMessage(in), "_c", prop)
	if err != nil || added || string(got) != in {
		t.Errorf("existing property: %s %v %v", got, added, err)
	}
	for _, bad := range []string{`[]`, `{"properties":[]}`, `nope`} {
		if _, _, err := AddProperty(json.RawMessage(bad), "_c", prop); err == nil {
			t.Errorf("AddProperty(%s) accepted", bad)
		}
	}
}
