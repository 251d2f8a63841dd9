package tools

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// SchemaHash returns the hex sha256 of schema's canonical JSON: object keys
// sorted, insignificant whitespace removed, numbers as written. Two schemas
// that differ only in key order or formatting hash the same.
func SchemaHash(schema json.RawMessage) (string, error) {
	canon, err := CanonicalJSON(schema)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// CanonicalJSON re-encodes a JSON value with sorted object keys and no
// insignificant whitespace, keeping numbers exactly as written.
func CanonicalJSON(raw json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if dec.More() {
		return nil, errors.New("canonical json: trailing data")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// AddProperty returns a copy of the object schema with one more top-level
// property, keeping every other byte of the schema's members as they were
// and their order. It reports added=false, and returns schema unchanged,
// when the property already exists.
func AddProperty(schema json.RawMessage, name string, prop json.RawMessage) (out json.RawMessage, added bool, err error) {
	members, err := objectMembers(schema)
	if err != nil {
		return nil, false, fmt.Errorf("input schema: %w", err)
	}
	found := false
	for i, m := range members {
		if m.key != "properties" {
			continue
		}
		found = true
		props, err := objectMembers(m.value)
		if err != nil {
			return nil, false, fmt.Errorf("input schema properties: %w", err)
		}
		for _, p := range props {
			if p.key == name {
				return schema, false, nil
			}
		}
		props = append(props, member{key: name, value: prop})
		members[i].value = encodeMembers(props)
	}
	if !found {
		members = append(members, member{key: "properties", value: encodeMembers([]member{{key: name, value: prop}})})
	}
	return encodeMembers(members), true, nil
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers splits a JSON object into its members, in order.
func objectMembers(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("bad object key")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{key: key, value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

func encodeMembers(ms []member) json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(m.value)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// duplicateKey returns a key that one object of the JSON text raw has
// twice, "" when none has. It reads raw once, however deep.
func duplicateKey(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var open []map[string]bool // each open object's keys; nil for an array
	key := false               // the next token is a key (or the object's end)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		switch tok {
		case json.Delim('{'):
			open, key = append(open, map[string]bool{}), true
			continue
		case json.Delim('['):
			open, key = append(open, nil), false
			continue
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
		default:
			if key {
				k, _ := tok.(string)
				if open[len(open)-1][k] {
					return k, nil
				}
				open[len(open)-1][k], key = true, false
				continue
			}
		}
		// A value ended: in an object, a key comes next.
		key = len(open) > 0 && open[len(open)-1] != nil
	}
}
