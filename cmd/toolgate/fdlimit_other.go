//go:build !unix

package main

// fdLimit is the process's open file limit, unknown here.
func fdLimit() int { return 0 }
