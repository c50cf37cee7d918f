#!/usr/bin/env python3
"""A loopback OpenAI-protocol model that answers at once, for measuring the load one run puts on
the journal, the HCC store, the LLM endpoint and the filesystem (docs/scaling.md).

Chat requests with a JSON schema get the smallest object that satisfies it; others get a
script that copies the sample submission and prints a metric, so every node runs a real job
and ends valid. Usage: fake_model.py PORT (prints nothing; Ctrl-C stops it). Counts every
request in ./fake_model_requests.log (one line each: unix time, bytes in, bytes out).
"""
import http.server, json, sys, time

SCRIPT = """Title: copy the sample
```python
import pandas as pd
s = pd.read_csv('/data/sample_submission.csv')
s.to_csv('submission.csv', index=False)
print('VALIDATION_METRIC: 0.5')
```"""


def example(schema, defs):
    if "$ref" in schema:
        return example(defs[schema["$ref"].split("/")[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return example(schema[key][0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = [k for k in kind if k != "null"][0]
    if kind == "object":
        return {k: example(v, defs) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        n = schema.get("minItems", 0)
        return [example(schema.get("items", {}), defs) for _ in range(n)]
    if kind in ("number", "integer"):
        low = schema.get("minimum", 0)
        return max(low, 0) if kind == "integer" else max(float(low), 0.5)
    if kind == "boolean":
        return False
    return "x" * max(1, schema.get("minLength", 1))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return len(body)

    def do_GET(self):
        self.reply({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        request = json.loads(raw or b"{}")
        if self.path.endswith("/embeddings"):
            inputs = request.get("input", [])
            inputs = inputs if isinstance(inputs, list) else [inputs]
            sent = self.reply({"data": [{"index": i, "embedding": [0.1] * 64} for i in range(len(inputs))],
                               "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        else:
            schema = (request.get("response_format") or {}).get("json_schema", {}).get("schema")
            text = json.dumps(example(schema, schema.get("$defs", {}))) if schema else SCRIPT
            sent = self.reply({
                "id": "x", "object": "chat.completion", "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(text) // 4,
                          "total_tokens": (len(raw) + len(text)) // 4},
            })
        with open("fake_model_requests.log", "a") as log:
            log.write(f"{time.time():.3f} {len(raw)} {sent}\n")


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
