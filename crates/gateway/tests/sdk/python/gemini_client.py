"""End-to-end client for the Ekai Gateway's Gemini-native API, using Google's official
`google-genai` Python SDK.

Usage: python gemini_client.py MODEL EXPECTED_MOCK SCENARIO[,SCENARIO...]

EXPECTED_MOCK names the upstream that must answer (`mock-openai`, `mock-anthropic`, ...).
Scenarios: plain, stream, count, tools, embed (MODEL is then an embedding model). The gateway's address comes from GEMINI_GATEWAY_URL and a
dummy key from GEMINI_API_KEY. Every check is asserted here; the last stdout line is a JSON summary.
"""

import json
import os
import sys
import traceback

from google import genai
from google.genai import types

from embeddings_client import vector

PROMPT = "Say hello to the gateway"
TOOL_RESULT = "18C and sunny"


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def client():
    return genai.Client(
        api_key=os.environ["GEMINI_API_KEY"],
        http_options=types.HttpOptions(
            base_url=os.environ["GEMINI_GATEWAY_URL"], api_version="v1beta"
        ),
    )


def plain(c, model, mock):
    r = c.models.generate_content(
        model=model,
        contents=PROMPT,
        config=types.GenerateContentConfig(system_instruction="Be brief."),
    )
    check(r.text == f"Hello from {mock}: {PROMPT}", f"plain: text {r.text!r}")
    check(r.usage_metadata.total_token_count > 0, f"plain: usage {r.usage_metadata}")
    return {"text": r.text}


def stream(c, model, mock):
    text, chunks, last = "", 0, None
    for chunk in c.models.generate_content_stream(model=model, contents=PROMPT):
        chunks += 1
        text += chunk.text or ""
        last = chunk
    check(chunks > 1, f"stream: {chunks} chunk(s)")
    check(text == f"Hello from {mock}: {PROMPT}", f"stream: text {text!r}")
    check(last.usage_metadata is not None, "stream: last chunk has no usage")
    return {"text": text, "chunks": chunks}


def count(c, model, mock):
    r = c.models.count_tokens(model=model, contents=PROMPT)
    check(r.total_tokens and r.total_tokens > 0, f"count: {r}")
    return {"total_tokens": r.total_tokens}


def tools(c, model, mock):
    weather = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                description="Current weather for a city",
                parameters_json_schema={
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            )
        ]
    )
    config = types.GenerateContentConfig(tools=[weather])
    user = types.Content(role="user", parts=[types.Part.from_text(text=PROMPT)])
    first = c.models.generate_content(model=model, contents=[user], config=config)
    calls = first.function_calls or []
    check(len(calls) == 1, f"tools: expected one call, got {first}")
    check(calls[0].name == "get_weather", f"tools: name {calls[0].name}")
    check(dict(calls[0].args) == {"location": "Paris"}, f"tools: args {calls[0].args}")
    answer = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name="get_weather", response={"output": TOOL_RESULT})],
    )
    second = c.models.generate_content(
        model=model, contents=[user, first.candidates[0].content, answer], config=config
    )
    check(second.text == f"Tool result received: {TOOL_RESULT}", f"tools: final {second.text!r}")
    return {"final": second.text}


def embed(c, model, mock):
    texts = ["one two three", "four"]
    r = c.models.embed_content(
        model=model,
        contents=texts,
        config=types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", output_dimensionality=4),
    )
    got = [e.values for e in r.embeddings]
    check(got == [vector(t, 4) for t in texts], f"embed: vectors {got}")
    return {"count": len(got)}


def main():
    model, mock, scenarios = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    c = client()
    out = {}
    try:
        for sc in scenarios:
            fn = {"plain": plain, "stream": stream, "count": count, "tools": tools, "embed": embed}.get(sc)
            if fn is None:
                raise CheckFailed(f"unknown scenario {sc}")
            out[sc] = fn(c, model, mock)
    except Exception as e:  # noqa: BLE001 - report everything, exit non-zero
        traceback.print_exc()
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
