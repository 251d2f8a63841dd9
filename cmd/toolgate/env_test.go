package main

import (
	"slices"
	"testing"
)

func TestUpstreamBaseEnv(t *testing.T) {
	got := upstreamBaseEnv(mapEnv{
		"PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "LC_TIME": "en_GB.UTF-8", "TERM": "",
		"SLACK_BOT_TOKEN": "xoxb-secret", "TOOLGATE_AUTH_TOKEN": "bearer", "AWS_SECRET_ACCESS_KEY": "aws", "LC_EVIL": "x",
	})
	want := append([]string{"PATH=/usr/bin", "HOME=/home/me", "LANG=C.UTF-8", "LC_TIME=en_GB.UTF-8"}, gitEnv...)
	if !slices.Equal(got, want) {
		t.Errorf("upstreamBaseEnv = %q, want %q", got, want)
	}
}
