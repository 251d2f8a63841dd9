// Package bench holds toolgate's end-to-end benchmarks; it has no library
// code. Run:
//
//	go test -run='^$' -bench=Call -benchtime=2000x ./bench
//
// BenchmarkCallDirect calls the test upstream's echo tool with an mcp-go
// client over stdio; BenchmarkCallProxied makes the same call through the
// toolgate binary (stdio in, stdio out), with the gate, and whatever
// policy and audit serve wires, in the path. The ratio of the two is the
// price of the gateway per tools/call.
package bench
