package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/toolgate/toolgate/config"
)

func TestPlanMetrics(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	log := slog.New(slog.DiscardHandler)
	tokenFile := filepath.Join(t.TempDir(), "m.token")
	if err := os.WriteFile(tokenFile, []byte("mtok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	status := func(h http.Handler, auth string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		return rec.Code
	}

	// One-person setup: open, on the MCP listener, as before.
	mp, err := planMetrics(config.Metrics{}, false, osEnv{}, ok, log)
	if err != nil || mp.handler == nil || mp.listen != "" || status(mp.handler, "") != 200 {
		t.Fatalf("one-person: %+v %v", mp, err)
	}
	// Team setup without a token or listener: not served.
	if mp, err := planMetrics(config.Metrics{}, true, osEnv{}, ok, log); err != nil || mp.handler != nil {
		t.Fatalf("team, nothing configured: %+v %v", mp, err)
	}
	// A listener of its own.
	if mp, err := planMetrics(config.Metrics{Listen: "127.0.0.1:0"}, true, osEnv{}, ok, log); err != nil || mp.handler == nil || mp.listen == "" {
		t.Fatalf("team, own listener: %+v %v", mp, err)
	}
	// Its own token, and nothing else.
	mp, err = planMetrics(config.Metrics{AuthTokenFile: tokenFile}, true, osEnv{}, ok, log)
	if err != nil || mp.handler == nil {
		t.Fatalf("team, token: %+v %v", mp, err)
	}
	for auth, want := range map[string]int{"": 401, "Bearer nope": 401, "Bearer mtok ": 401, "Basic mtok": 401, "Bearer mtok": 200, "bearer mtok": 200} {
		if got := status(mp.handler, auth); got != want {
			t.Errorf("Authorization %q: %d, want %d", auth, got, want)
		}
	}
	// A token variable named but empty is an error, not an open endpoint.
	if _, err := planMetrics(config.Metrics{AuthTokenEnv: "TOOLGATE_TEST_UNSET_METRICS_TOKEN"}, false, osEnv{}, ok, log); err == nil {
		t.Fatal("an unset metrics token variable was accepted")
	}
}
