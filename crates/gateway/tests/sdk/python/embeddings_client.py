"""Embeddings through the Ekai Gateway with the official `openai` Python SDK.

Usage: python embeddings_client.py MODEL

The base URL and key come from the environment (OPENAI_BASE_URL, OPENAI_API_KEY). The mock
provider answers with a deterministic vector per text (see `ekai_mock_provider::embeddings`),
recomputed here, so each encoding is checked value for value: the SDK's default (it asks for
base64 and decodes it), explicit `float`, and explicit `base64` (returned to the caller as the
string). The last stdout line is a JSON summary.
"""

import base64
import json
import struct
import sys

import openai
from openai import OpenAI

TEXTS = ["one two three", "four"]


def vector(text, dims=8):
    """The mock's vector: FNV-1a 64 of text + [i], mapped to a multiple of 1/1024 in [-1, 1)."""
    out = []
    for i in range(dims):
        h = 0xCBF29CE484222325
        for b in text.encode() + bytes([i]):
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        out.append(((h % 2048) - 1024) / 1024.0)
    return out


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    model = sys.argv[1]
    client = OpenAI(timeout=30.0)
    summary = {"sdk": "openai", "sdk_version": openai.__version__, "model": model}

    # The SDK's default: it sends encoding_format=base64 and decodes to floats itself.
    raw = client.embeddings.with_raw_response.create(model=model, input=TEXTS)
    sent = json.loads(raw.http_request.content)
    summary["default_wire_format"] = sent.get("encoding_format")
    summary["provider"] = raw.headers.get("x-ekai-provider")
    resp = raw.parse()
    check(len(resp.data) == 2, f"default: {len(resp.data)} embeddings")
    for i, text in enumerate(TEXTS):
        check(resp.data[i].index == i, f"default: index {resp.data[i].index}")
        check(list(resp.data[i].embedding) == vector(text), f"default: vector {i} differs")
    summary["prompt_tokens"] = resp.usage.prompt_tokens
    check(resp.usage.total_tokens == resp.usage.prompt_tokens, f"usage {resp.usage}")

    resp = client.embeddings.create(model=model, input=TEXTS[0], encoding_format="float", dimensions=5)
    check(resp.data[0].embedding == vector(TEXTS[0], 5), "float: vector differs")
    summary["float_ok"] = True

    resp = client.embeddings.create(model=model, input=TEXTS[1], encoding_format="base64")
    b64 = resp.data[0].embedding
    check(isinstance(b64, str), f"base64: got {type(b64).__name__}")
    raw_bytes = base64.b64decode(b64)
    decoded = list(struct.unpack(f"<{len(raw_bytes) // 4}f", raw_bytes))
    check(decoded == vector(TEXTS[1]), "base64: vector differs")
    summary["base64_ok"] = True

    try:
        client.embeddings.create(model=model, input="x", encoding_format="float", dimensions=0)
        check(False, "dimensions=0 was accepted")
    except openai.BadRequestError as e:
        summary["error"] = {"class": type(e).__name__, "status": e.status_code, "param": e.param}

    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
