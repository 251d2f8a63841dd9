// Command plainproxy is the plain MCP proxy tgbench measures toolgate
// against: an mcp-go server that lists an upstream's tools under a prefix
// and forwards each tools/call to the upstream with an mcp-go client, and
// does nothing else (no rules, no audit, no schema checks). What it costs
// per call is what any proxy on mcp-go costs; what toolgate costs beyond it
// is toolgate's own.
//
//	plainproxy [--http ADDR] [--prefix up__] -- COMMAND [ARG...]
//
// COMMAND is the upstream, a stdio MCP server. Without --http the proxy
// serves stdio (mcp-go's StdioServer, with toolgate's 100 concurrent
// tools/call slots); with it, streamable HTTP on ADDR at /mcp (protocol
// versions up to 2025-11-25, so clients get sessions, as with toolgate)
// and a liveness probe at /healthz. Both clients are pinned to protocol
// 2025-11-25, as toolgate's are.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// workers matches toolgate's stdio concurrency (mcp/stdio.go stdioWorkers).
const workers = 100

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "plainproxy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plainproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http", "", "serve streamable HTTP on this address instead of stdio")
	prefix := fs.String("prefix", "up__", "prefix of the exposed tool names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return errors.New("usage: plainproxy [--http ADDR] [--prefix P] -- COMMAND [ARG...]")
	}
	up, err := dial(ctx, fs.Arg(0), fs.Args()[1:], stderr)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer up.Close()
	list, err := up.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return fmt.Errorf("upstream tools/list: %w", err)
	}
	s := server.NewMCPServer("plainproxy", "1", server.WithToolCapabilities(true))
	for _, t := range list.Tools {
		name := t.Name
		t.Name = *prefix + name
		s.AddTool(t, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			fwd := mcp.CallToolRequest{}
			fwd.Params.Name = name
			fwd.Params.Arguments = req.Params.Arguments
			return up.CallTool(ctx, fwd)
		})
	}
	if *addr == "" {
		ss := server.NewStdioServer(s)
		ss.SetErrorLogger(log.New(stderr, "plainproxy: ", 0))
		server.WithWorkerPoolSize(workers)(ss)
		return ss.Listen(ctx, stdin, stdout)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s,
		server.WithStreamableHTTPProtocolVersions(mcp.LegacyProtocolVersions()...),
		server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler))))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	hs := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// dial starts the upstream and initializes a client of it.
func dial(ctx context.Context, command string, args []string, stderr io.Writer) (*client.Client, error) {
	c := client.NewClient(transport.NewStdioWithOptions(command, nil, args, transport.WithCommandStderrWriter(stderr)),
		client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	if err := c.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	req.Params.ClientInfo = mcp.Implementation{Name: "plainproxy", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return c, nil
}
