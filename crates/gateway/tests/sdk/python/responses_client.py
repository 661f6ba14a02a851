"""End-to-end client for the Ekai Gateway's Responses API, using the official `openai` Python SDK
(`client.responses.create` / `client.responses.stream`), the way Codex-style agents talk.

Usage: python responses_client.py MODEL EXPECTED_MOCK SCENARIO[,SCENARIO...]

EXPECTED_MOCK names the upstream that must answer (`mock-anthropic`, `mock-responses`, ...).
Scenarios: plain, stream, tools, stream_tools. Base URL and key come from OPENAI_BASE_URL /
OPENAI_API_KEY. Every check is asserted here; the last stdout line is a JSON summary.
"""

import json
import sys
import traceback

from openai import OpenAI

PROMPT = "Say hello to the gateway"
TOOL_RESULT = "18C and sunny"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def plain(client, model, mock):
    r = client.responses.create(model=model, input=PROMPT, instructions="Be brief.")
    check(r.status == "completed", f"plain: status {r.status}")
    check(r.output_text == f"Hello from {mock}: {PROMPT}", f"plain: text {r.output_text!r}")
    check(r.usage is not None and r.usage.output_tokens > 0, f"plain: usage {r.usage}")
    return {"text": r.output_text, "id": r.id}


def stream(client, model, mock):
    types = []
    with client.responses.stream(model=model, input=PROMPT) as s:
        for event in s:
            types.append(event.type)
        final = s.get_final_response()
    check(types[0] == "response.created", f"stream: first event {types[:3]}")
    check(types[-1] == "response.completed", f"stream: last event {types[-3:]}")
    check("response.output_text.delta" in types, f"stream: no text deltas in {types}")
    first_delta = types.index("response.output_text.delta")
    check(
        "response.output_item.added" in types[:first_delta],
        "stream: text delta before output_item.added",
    )
    check(final.output_text == f"Hello from {mock}: {PROMPT}", f"stream: text {final.output_text!r}")
    check(final.usage is not None and final.usage.output_tokens > 0, f"stream: usage {final.usage}")
    return {"text": final.output_text, "events": len(types)}


def tool_loop(client, model, mock, streaming):
    base = [{"role": "user", "content": PROMPT}]
    if streaming:
        with client.responses.stream(model=model, input=base, tools=[WEATHER_TOOL]) as s:
            for _ in s:
                pass
            first = s.get_final_response()
    else:
        first = client.responses.create(model=model, input=base, tools=[WEATHER_TOOL])
    calls = [o for o in first.output if o.type == "function_call"]
    check(len(calls) == 1, f"tools: expected one function_call, got {first.output}")
    call = calls[0]
    check(call.name == "get_weather", f"tools: name {call.name}")
    check(json.loads(call.arguments) == {"location": "Paris"}, f"tools: args {call.arguments}")
    follow = base + [o.model_dump(exclude_none=True) for o in first.output] + [
        {"type": "function_call_output", "call_id": call.call_id, "output": TOOL_RESULT}
    ]
    second = client.responses.create(model=model, input=follow, tools=[WEATHER_TOOL])
    check(
        second.output_text == f"Tool result received: {TOOL_RESULT}",
        f"tools: final text {second.output_text!r}",
    )
    return {"call_id": call.call_id, "final": second.output_text}


def main():
    model, mock, scenarios = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    client = OpenAI(max_retries=0)
    out = {}
    try:
        for sc in scenarios:
            if sc == "plain":
                out[sc] = plain(client, model, mock)
            elif sc == "stream":
                out[sc] = stream(client, model, mock)
            elif sc == "tools":
                out[sc] = tool_loop(client, model, mock, False)
            elif sc == "stream_tools":
                out[sc] = tool_loop(client, model, mock, True)
            else:
                raise CheckFailed(f"unknown scenario {sc}")
    except Exception as e:  # noqa: BLE001 - report everything, exit non-zero
        traceback.print_exc()
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
