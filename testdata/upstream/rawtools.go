package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// serveRawTools serves MCP over stdio by hand, so that its tools/list can
// say what mcp-go would not write (keys in another letter case, a key
// twice): its result's tools array is the content of file, byte for
// byte, read at each tools/list. Until file has content, initialize is not
// answered (a server slow to start); each later change of file is
// announced with tools/list_changed. A tools/call returns the text
// "NAME called with ARGUMENTS".
func serveRawTools(file string) error {
	var mu sync.Mutex
	write := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(msg)
	}
	read := func() []byte {
		b, _ := os.ReadFile(file)
		return bytes.TrimSpace(b)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<24)
	for in.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			return err
		}
		if req.ID == nil {
			continue // a notification
		}
		switch req.Method {
		case "initialize":
			for len(read()) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
			go announceChanges(read(), read, write)
			write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"rawtools","version":"1"}}}`, req.ID))
		case "tools/list":
			write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"tools":%s}}`, req.ID, read()))
		case "tools/call":
			text, _ := json.Marshal(fmt.Sprintf("%s called with %s", req.Params.Name, req.Params.Arguments))
			write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":%s}]}}`, req.ID, text))
		default:
			write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{}}`, req.ID))
		}
	}
	return in.Err()
}

// announceChanges sends tools/list_changed each time read's answer
// changes from last, the content when the server was initialized (read
// before the goroutine starts, so a change made right after initialize is
// not taken for the start).
func announceChanges(last []byte, read func() []byte, write func(string)) {
	for range time.Tick(20 * time.Millisecond) {
		if b := read(); !bytes.Equal(b, last) {
			last = b
			write(`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`)
		}
	}
}
