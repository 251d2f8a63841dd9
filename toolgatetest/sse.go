package toolgatetest

import (
	"bytes"
	"net/http"
	"strings"
)

// SplitSSEData serves h with each SSE event's data written a line per
// element of an array of objects ("},{" ends a line), as SSE allows: an
// upstream whose every line is short while its events are not.
func SplitSSEData(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(sseSplitter{w}, r)
	})
}

type sseSplitter struct{ http.ResponseWriter }

func (w sseSplitter) Write(b []byte) (int, error) {
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		if _, err := w.ResponseWriter.Write(bytes.ReplaceAll(b, []byte("},{"), []byte("},\ndata: {"))); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w sseSplitter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
