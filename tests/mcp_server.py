#!/usr/bin/env python3
"""A Model Context Protocol server over stdio for pae-local's tests and README examples.

Standard library only: newline-delimited JSON-RPC 2.0 on stdin/stdout. Besides two honest
tools (`add`, `echo`) it has one for each way a server can misbehave: `fail` answers an
error result, `crash` exits mid-call, `hang` never answers, `huge` answers 5 MB of text and
`bytes` writes a line that is not UTF-8;
`odd` has an input schema the grammar compiler refuses.
"""

import json
import sys
import time

TOOLS = [
    {
        "name": "add",
        "description": "Adds two numbers a and b and returns the sum.",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
    {
        "name": "echo",
        "description": "Returns the text it is given.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
    {
        "name": "fail",
        "description": "Always reports an error.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "crash",
        "description": "Exits the server in the middle of the call.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "hang",
        "description": "Never answers.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "huge",
        "description": "Returns five megabytes of text.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "odd",
        "description": "Has an input schema no grammar can hold (a look-behind pattern).",
        "inputSchema": {
            "type": "object",
            "properties": {"x": {"type": "string", "pattern": "(?<=a)b"}},
            "required": ["x"],
        },
    },
    {
        "name": "bytes",
        "description": "Answers with a line that is not UTF-8.",
        "inputSchema": {"type": "object", "properties": {}},
    },
]

PAGE = 4


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def text_result(request_id, text, is_error=False):
    result = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["isError"] = True
    send({"jsonrpc": "2.0", "id": request_id, "result": result})


def call(request_id, name, args):
    if name == "add":
        total = args["a"] + args["b"]
        if isinstance(total, float) and total.is_integer():
            total = int(total)
        text_result(request_id, str(total))
    elif name == "echo":
        text_result(request_id, args["text"])
    elif name == "fail":
        text_result(request_id, "the fail tool always fails", is_error=True)
    elif name == "crash":
        sys.exit(3)
    elif name == "hang":
        while True:
            time.sleep(3600)
    elif name == "huge":
        text_result(request_id, "x" * (5 * 1024 * 1024))
    elif name == "odd":
        text_result(request_id, args.get("x", ""))
    elif name == "bytes":
        sys.stdout.buffer.write(b'{"jsonrpc": "2.0", "id": ' + json.dumps(request_id).encode()
                                + b', "result": {"content": [{"type": "text", "text": "\xff\xfe bad"}]}}\n')
        sys.stdout.flush()
    else:
        send({"jsonrpc": "2.0", "id": request_id,
              "error": {"code": -32602, "message": f"unknown tool: {name}"}})


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        message = json.loads(line)
        method = message.get("method")
        request_id = message.get("id")
        params = message.get("params") or {}
        if request_id is None:
            continue  # notifications (initialized, cancelled) need no answer
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": request_id, "result": {
                "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "pae-local-test-server", "version": "1.0"},
            }})
        elif method == "tools/list":
            # Two pages, so that clients are seen to follow `nextCursor`.
            start = int(params.get("cursor") or 0)
            result = {"tools": TOOLS[start:start + PAGE]}
            if start + PAGE < len(TOOLS):
                result["nextCursor"] = str(start + PAGE)
            send({"jsonrpc": "2.0", "id": request_id, "result": result})
        elif method == "tools/call":
            call(request_id, params.get("name"), params.get("arguments") or {})
        elif method == "ping":
            send({"jsonrpc": "2.0", "id": request_id, "result": {}})
        else:
            send({"jsonrpc": "2.0", "id": request_id,
                  "error": {"code": -32601, "message": f"no method {method}"}})


if __name__ == "__main__":
    main()
