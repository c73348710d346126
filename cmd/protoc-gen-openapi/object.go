package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// object is a JSON object that keeps its keys in order, so that the document lists
// paths in the order the protos declare them and reads like the generator's output.
// Values are *object, []any, json.Number, string, bool or nil.
type object struct {
	keys []string
	vals map[string]any
}

func newObject() *object { return &object{vals: map[string]any{}} }

// set replaces the value of k, or appends k when it is new.
func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// get returns the value of k.
func (o *object) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// obj returns the object under k, or nil when there is none.
func (o *object) obj(k string) *object {
	v, _ := o.vals[k].(*object)
	return v
}

// str returns the string under k, or "".
func (o *object) str(k string) string {
	v, _ := o.vals[k].(string)
	return v
}

// del removes k.
func (o *object) del(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

// rename changes key from to to in place, keeping its position.
func (o *object) rename(from, to string) {
	v, ok := o.vals[from]
	if !ok {
		return
	}
	for i, key := range o.keys {
		if key == from {
			o.keys[i] = to
		}
	}
	delete(o.vals, from)
	o.vals[to] = v
}

// orderFirst moves the listed keys, where present, to the front in that order.
func (o *object) orderFirst(keys ...string) {
	var front, rest []string
	listed := map[string]bool{}
	for _, k := range keys {
		if _, ok := o.vals[k]; ok {
			front = append(front, k)
			listed[k] = true
		}
	}
	for _, k := range o.keys {
		if !listed[k] {
			rest = append(rest, k)
		}
	}
	o.keys = append(front, rest...)
}

// MarshalJSON writes the keys in order.
func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeObject parses a JSON document whose top level is an object.
func decodeObject(data []byte) (*object, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := decodeValue(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON document")
	}
	o, ok := v.(*object)
	if !ok {
		return nil, errors.New("the JSON document is not an object")
	}
	return o, nil
}

func decodeValue(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := newObject()
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				v, err := decodeValue(d)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			_, err := d.Token() // '}'
			return o, err
		case '[':
			list := []any{}
			for d.More() {
				v, err := decodeValue(d)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := d.Token() // ']'
			return list, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return tok, nil
	}
}

// canonical is v as compact JSON with every object's keys sorted, for comparing two
// values regardless of key order.
func canonical(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var plain any
	if err := json.Unmarshal(b, &plain); err != nil {
		return "", err
	}
	b, err = json.Marshal(plain)
	return string(b), err
}
