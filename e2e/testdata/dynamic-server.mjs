#!/usr/bin/env node
// dynamic-server.mjs is a stdio MCP server whose tool list changes on demand,
// for the tools/list_changed end-to-end test: calling add_tool {name, text}
// adds a tool NAME that returns TEXT, then sends notifications/tools/list_changed.
// Its wait and cancelled tools show whether a cancellation reached it.
// It uses the SDK's low-level Server with plain JSON schemas (no zod import).
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const server = new Server({ name: 'dynamic', version: '1.0.0' }, { capabilities: { tools: { listChanged: true } } });
const tools = new Map();

tools.set('add_tool', {
    def: {
        name: 'add_tool',
        description: 'Adds a tool NAME that returns TEXT.',
        inputSchema: {
            type: 'object',
            properties: { name: { type: 'string' }, text: { type: 'string' } },
            required: ['name', 'text'],
        },
        annotations: { readOnlyHint: false, destructiveHint: false },
    },
    run: async ({ name, text }) => {
        tools.set(name, {
            def: { name, description: `Returns ${JSON.stringify(text)}.`, inputSchema: { type: 'object', properties: {} } },
            run: async () => ({ content: [{ type: 'text', text }] }),
        });
        await server.sendToolListChanged();
        return { content: [{ type: 'text', text: `added ${name}` }] };
    },
});

// wait sleeps for ms unless the request is cancelled (notifications/cancelled
// aborts extra.signal); cancelled reports how many waits were cancelled.
let cancelled = 0;
tools.set('wait', {
    def: {
        name: 'wait',
        description: 'Waits MS milliseconds, or until cancelled.',
        inputSchema: { type: 'object', properties: { ms: { type: 'number' } }, required: ['ms'] },
    },
    run: ({ ms }, extra) => new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ content: [{ type: 'text', text: `waited ${ms}ms` }] }), ms);
        extra.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            cancelled++;
            resolve({ content: [{ type: 'text', text: 'cancelled' }], isError: true });
        });
    }),
});
tools.set('cancelled', {
    def: { name: 'cancelled', description: 'How many waits were cancelled.', inputSchema: { type: 'object', properties: {} } },
    run: async () => ({ content: [{ type: 'text', text: String(cancelled) }] }),
});

server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [...tools.values()].map((t) => t.def) }));
server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const tool = tools.get(req.params.name);
    if (!tool) return { content: [{ type: 'text', text: `unknown tool ${req.params.name}` }], isError: true };
    return tool.run(req.params.arguments ?? {}, extra);
});

await server.connect(new StdioServerTransport());
