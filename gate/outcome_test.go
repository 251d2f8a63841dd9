package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// marshaler is a decoded result whose JSON is fixed.
type marshaler struct {
	b   string
	err error
}

func (m marshaler) MarshalJSON() ([]byte, error) { return []byte(m.b), m.err }

// TestOutcomeHashesTheResultJSON: the recorded size and hash are those of
// the JSON the agent receives as "result": a decoded result's own
// encoding, a raw result's bytes; the status follows isError.
func TestOutcomeHashesTheResultJSON(t *testing.T) {
	const js = `{"content":[{"type":"text","text":"\u003cx\u003e"}]}`
	raw := json.RawMessage(`{ "content": [{"type":"text","text":"<x>"}], "isError": true }`)
	for _, tc := range []struct {
		res    toolgate.Result
		bytes  string
		status string
	}{
		{toolgate.Result{Value: marshaler{b: js}}, js, toolgate.StatusOK},
		{toolgate.Result{Raw: raw, IsError: true}, string(raw), toolgate.StatusToolError},
	} {
		sum := sha256.Sum256([]byte(tc.bytes))
		o := outcome(tc.res, nil, time.Millisecond, time.Now())
		if o.Status != tc.status || o.ResultSize != len(tc.bytes) || o.ResultHash != hex.EncodeToString(sum[:]) {
			t.Errorf("outcome %+v, want %s, size %d, hash %x", o, tc.status, len(tc.bytes), sum)
		}
	}
	if o := outcome(toolgate.Result{}, nil, 0, time.Now()); o.Status != toolgate.StatusFailed {
		t.Errorf("no result: %+v", o)
	}
	if o := outcome(toolgate.Result{}, errors.New("reset"), 0, time.Now()); o.Status != toolgate.StatusFailed || o.Error != "reset" {
		t.Errorf("failed forward: %+v", o)
	}
	if o := outcome(toolgate.Result{Value: marshaler{err: errors.New("x")}}, nil, 0, time.Now()); o.Status != toolgate.StatusOK || o.ResultHash != "" {
		t.Errorf("unencodable result: %+v", o)
	}
}
