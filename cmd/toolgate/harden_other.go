//go:build !linux

package main

import "log/slog"

// harden does nothing here: PR_SET_DUMPABLE is Linux's. (On macOS a
// process of another user cannot read toolgate's memory or environment;
// one of the same user can, unless the system hardens it.)
func harden(*slog.Logger) {}
