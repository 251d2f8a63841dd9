#!/usr/bin/env node
// client.mjs drives the official MCP TypeScript SDK client for toolgate's
// end-to-end tests. It runs steps and answers each with one JSON line.
//
//   node client.mjs                 steps as JSON lines on stdin, one answer line each (the Go tests use this)
//   node client.mjs scenario.json   {"steps": [...]} from a file; prints a JSON array of answers
//
// Steps ({"op": ..., "id": any}; "id" is echoed back):
//   {"op":"connect","transport":{"type":"stdio","command":"toolgate","args":[...],"env":{...},"cwd":"..."}}
//   {"op":"connect","transport":{"type":"http","url":"http://127.0.0.1:PORT/mcp","headers":{"Authorization":"Bearer T"}}}
//       -> {serverInfo, capabilities, instructions, protocolVersion, sessionId}
//   {"op":"listTools"}                          -> {tools: [...]} (all pages)
//   {"op":"callTool","name":"x","arguments":{},"meta":{},"progress":true,"timeoutMs":N,"cancelAfterMs":N}
//       -> {result, progress: [{progress,total,message}], elapsedMs}
//   {"op":"notifications"}                      -> {notifications: [{method, params}]} received so far (then cleared)
//   {"op":"listResources"} / {"op":"listResourceTemplates"} / {"op":"listPrompts"}
//       -> {resources|resourceTemplates|prompts: [...]} (all pages)
//   {"op":"readResource","uri":"..."}           -> {result}
//   {"op":"subscribe","uri":"..."} / {"op":"unsubscribe","uri":"..."}
//   {"op":"getPrompt","name":"x","arguments":{}} -> {result}
//   {"op":"complete","ref":{"type":"ref/prompt","name":"x"},"argument":{"name","value"},"context":{}} -> {result}
//   {"op":"setLevel","level":"debug"}
//   {"op":"ping"} / {"op":"sleep","ms":N} / {"op":"close"}
// Every answer has "ok"; a failed step has ok:false, "error" (message) and "code" (MCP error code or HTTP status).
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

let client = null;
let transport = null;
let notifications = [];

async function connect(step) {
    const t = step.transport ?? {};
    if (t.type === 'stdio') {
        transport = new StdioClientTransport({ command: t.command, args: t.args ?? [], env: t.env, cwd: t.cwd, stderr: 'inherit' });
    } else if (t.type === 'http') {
        transport = new StreamableHTTPClientTransport(new URL(t.url), { requestInit: { headers: t.headers ?? {} } });
    } else {
        throw new Error(`unknown transport type ${JSON.stringify(t.type)}`);
    }
    const info = step.client ?? { name: 'toolgate-e2e-ts', version: '1.0.0' };
    client = new Client(info, { capabilities: step.capabilities ?? {} });
    client.fallbackNotificationHandler = async (n) => {
        notifications.push({ method: n.method, params: n.params ?? null });
    };
    await client.connect(transport, { timeout: step.timeoutMs ?? 30000 });
    return {
        serverInfo: client.getServerVersion() ?? null,
        capabilities: client.getServerCapabilities() ?? null,
        instructions: client.getInstructions() ?? null,
        protocolVersion: transport.protocolVersion ?? null,
        sessionId: transport.sessionId ?? null,
    };
}

async function listTools(step) {
    const tools = [];
    let cursor;
    do {
        const page = await client.listTools(cursor ? { cursor } : {}, { timeout: step.timeoutMs ?? 30000 });
        tools.push(...page.tools);
        cursor = page.nextCursor;
    } while (cursor);
    return { tools };
}

async function callTool(step) {
    const progress = [];
    const opts = { timeout: step.timeoutMs ?? 30000 };
    if (step.progress) {
        opts.onprogress = (p) => progress.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null });
        opts.resetTimeoutOnProgress = true;
    }
    let timer;
    if (step.cancelAfterMs !== undefined) {
        const ac = new AbortController();
        opts.signal = ac.signal;
        timer = setTimeout(() => ac.abort('cancelled by the e2e scenario'), step.cancelAfterMs);
    }
    const params = { name: step.name, arguments: step.arguments ?? {} };
    if (step.meta) params._meta = step.meta;
    const start = Date.now();
    try {
        const result = await client.callTool(params, undefined, opts);
        return { result, progress, elapsedMs: Date.now() - start };
    } catch (e) {
        e.progress = progress;
        e.elapsedMs = Date.now() - start;
        throw e;
    } finally {
        clearTimeout(timer);
    }
}

// listAll gathers every page of one list method's items.
async function listAll(fn, key, step) {
    const items = [];
    let cursor;
    do {
        const page = await fn(cursor ? { cursor } : {}, { timeout: step.timeoutMs ?? 30000 });
        items.push(...page[key]);
        cursor = page.nextCursor;
    } while (cursor);
    return { [key]: items };
}

async function run(step) {
    const opts = { timeout: step.timeoutMs ?? 30000 };
    switch (step.op) {
        case 'listResources': return listAll((p, o) => client.listResources(p, o), 'resources', step);
        case 'listResourceTemplates': return listAll((p, o) => client.listResourceTemplates(p, o), 'resourceTemplates', step);
        case 'listPrompts': return listAll((p, o) => client.listPrompts(p, o), 'prompts', step);
        case 'readResource': return { result: await client.readResource({ uri: step.uri }, opts) };
        case 'subscribe': await client.subscribeResource({ uri: step.uri }, opts); return {};
        case 'unsubscribe': await client.unsubscribeResource({ uri: step.uri }, opts); return {};
        case 'getPrompt': return { result: await client.getPrompt({ name: step.name, arguments: step.arguments ?? {} }, opts) };
        case 'complete': return { result: await client.complete({ ref: step.ref, argument: step.argument, context: step.context }, opts) };
        case 'setLevel': await client.setLoggingLevel(step.level, opts); return {};
        case 'connect': return connect(step);
        case 'listTools': return listTools(step);
        case 'callTool': return callTool(step);
        case 'ping': await client.ping(); return {};
        case 'sleep': await new Promise((r) => setTimeout(r, step.ms ?? 0)); return {};
        case 'notifications': { const n = notifications; notifications = []; return { notifications: n }; }
        case 'close': if (client) await client.close(); client = null; return {};
        default: throw new Error(`unknown op ${JSON.stringify(step.op)}`);
    }
}

async function answer(step) {
    const base = { id: step.id ?? null, op: step.op ?? null };
    try {
        if (!['connect', 'close', 'sleep'].includes(step.op) && !client) throw new Error('not connected');
        return { ...base, ok: true, ...(await run(step)) };
    } catch (e) {
        const out = { ...base, ok: false, error: String(e?.message ?? e), code: e?.code ?? null };
        if (e?.progress) out.progress = e.progress;
        if (e?.elapsedMs !== undefined) out.elapsedMs = e.elapsedMs;
        return out;
    }
}

async function main() {
    if (process.argv[2]) {
        const scenario = JSON.parse(readFileSync(process.argv[2], 'utf8'));
        const out = [];
        for (const step of scenario.steps ?? []) out.push(await answer(step));
        if (client) await client.close();
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
    }
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of rl) {
        if (!line.trim()) continue;
        let step;
        try {
            step = JSON.parse(line);
        } catch (e) {
            process.stdout.write(JSON.stringify({ ok: false, error: `bad step JSON: ${e.message}` }) + '\n');
            continue;
        }
        process.stdout.write(JSON.stringify(await answer(step)) + '\n');
    }
    if (client) await client.close();
}

main().then(() => process.exit(0), (e) => {
    process.stderr.write(`client.mjs: ${e?.stack ?? e}\n`);
    process.exit(1);
});
