"""End-to-end client for the Ekai Gateway using the official `openai` Python SDK.

Usage: python openai_client.py MODEL SCENARIO[,SCENARIO...]

Scenarios: plain, stream, tools, errors. The base URL and key come from the environment
(OPENAI_BASE_URL=http://127.0.0.1:PORT/v1, OPENAI_API_KEY=anything), exactly as a user would
configure the SDK. Every check is asserted here; on failure the script exits non-zero with a
message on stderr. The last stdout line is a JSON summary of what was observed.
"""

import json
import sys
import traceback

import openai
from openai import OpenAI
from openai.types.chat import ChatCompletion

PROMPT = "Say hello to the gateway"
TOOL_RESULT = "18C and sunny"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City name"}},
            "required": ["location"],
        },
    },
}


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def user_messages(text=PROMPT):
    return [{"role": "user", "content": text}]


def check_text(text, where):
    check(isinstance(text, str) and text, f"{where}: empty reply text: {text!r}")
    check(text.startswith("Hello from mock-"), f"{where}: unexpected reply text: {text!r}")
    check(text.endswith(PROMPT), f"{where}: reply does not echo the prompt: {text!r}")


def scenario_plain(client, model):
    resp = client.chat.completions.create(model=model, messages=user_messages())
    check(resp.object == "chat.completion", f"plain: object is {resp.object!r}")
    check(len(resp.choices) == 1, f"plain: expected 1 choice, got {len(resp.choices)}")
    choice = resp.choices[0]
    check(choice.message.role == "assistant", f"plain: role is {choice.message.role!r}")
    text = choice.message.content
    check_text(text, "plain")
    check(choice.finish_reason == "stop", f"plain: finish_reason is {choice.finish_reason!r}")
    check(resp.usage is not None, "plain: no usage in the response")
    check(resp.usage.prompt_tokens > 0, f"plain: prompt_tokens {resp.usage.prompt_tokens}")
    check(resp.usage.completion_tokens > 0, f"plain: completion_tokens {resp.usage.completion_tokens}")
    check(
        resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens,
        f"plain: total_tokens mismatch {resp.usage}",
    )
    return {
        "text": text,
        "finish_reason": choice.finish_reason,
        "model": resp.model,
        "usage": resp.usage.model_dump(exclude_none=True),
    }


def consume_text_stream(stream, where):
    """Concatenates content deltas; returns (text, finish_reason, usage_chunks, chunk_count)."""
    parts = []
    finish = None
    usage_chunks = []
    count = 0
    for chunk in stream:
        count += 1
        check(chunk.object == "chat.completion.chunk", f"{where}: chunk object {chunk.object!r}")
        if chunk.usage is not None:
            usage_chunks.append((chunk.usage, len(chunk.choices)))
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
            if choice.finish_reason is not None:
                check(finish is None, f"{where}: two finish_reasons ({finish!r}, {choice.finish_reason!r})")
                finish = choice.finish_reason
    return "".join(parts), finish, usage_chunks, count


def scenario_stream(client, model):
    out = {}
    # Variant 1: with include_usage -> a final chunk with empty choices carries the usage.
    stream = client.chat.completions.create(
        model=model,
        messages=user_messages(),
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage_chunks, count = consume_text_stream(stream, "stream(include_usage)")
    check_text(text, "stream(include_usage)")
    check(finish == "stop", f"stream(include_usage): finish_reason {finish!r}")
    check(len(usage_chunks) == 1, f"stream(include_usage): expected exactly 1 usage chunk, got {len(usage_chunks)}")
    usage, n_choices = usage_chunks[0]
    check(n_choices == 0, f"stream(include_usage): usage chunk has {n_choices} choices, expected 0")
    check(usage.prompt_tokens > 0 and usage.completion_tokens > 0, f"stream(include_usage): usage {usage}")
    check(
        usage.total_tokens == usage.prompt_tokens + usage.completion_tokens,
        f"stream(include_usage): total_tokens mismatch {usage}",
    )
    out["with_usage"] = {
        "text": text,
        "finish_reason": finish,
        "chunks": count,
        "usage": usage.model_dump(exclude_none=True),
    }

    # Variant 2: plain stream, no usage requested.
    stream = client.chat.completions.create(model=model, messages=user_messages(), stream=True)
    text2, finish2, usage_chunks2, count2 = consume_text_stream(stream, "stream")
    check_text(text2, "stream")
    check(text2 == text, f"stream: text differs between variants: {text2!r} vs {text!r}")
    check(finish2 == "stop", f"stream: finish_reason {finish2!r}")
    check(
        not usage_chunks2,
        f"stream: usage was not requested but {len(usage_chunks2)} chunk(s) carried usage",
    )
    out["without_usage"] = {"text": text2, "finish_reason": finish2, "chunks": count2}
    out["text"] = text
    return out


def tool_round_messages(call_id, name, arguments):
    return user_messages("What is the weather in Paris?") + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": TOOL_RESULT},
    ]


def check_tool_call(call_id, name, arguments, where):
    check(isinstance(call_id, str) and call_id, f"{where}: tool call has no id: {call_id!r}")
    check(name == "get_weather", f"{where}: tool name {name!r}")
    try:
        args = json.loads(arguments)
    except Exception as e:  # noqa: BLE001
        raise CheckFailed(f"{where}: tool arguments are not JSON ({e}): {arguments!r}")
    check(args == {"location": "Paris"}, f"{where}: tool arguments {args!r}")


def check_final(text, where):
    check(
        isinstance(text, str) and "Tool result received: " + TOOL_RESULT in text,
        f"{where}: final answer does not acknowledge the tool result: {text!r}",
    )


def scenario_tools(client, model):
    out = {}
    # Non-streaming round trip.
    first = client.chat.completions.create(
        model=model, messages=user_messages("What is the weather in Paris?"), tools=[WEATHER_TOOL]
    )
    choice = first.choices[0]
    check(choice.finish_reason == "tool_calls", f"tools: finish_reason {choice.finish_reason!r}")
    calls = choice.message.tool_calls or []
    check(len(calls) == 1, f"tools: expected 1 tool call, got {calls!r}")
    call = calls[0]
    check(call.type == "function", f"tools: tool call type {call.type!r}")
    check_tool_call(call.id, call.function.name, call.function.arguments, "tools")
    second = client.chat.completions.create(
        model=model,
        messages=tool_round_messages(call.id, call.function.name, call.function.arguments),
        tools=[WEATHER_TOOL],
    )
    final = second.choices[0].message.content
    check_final(final, "tools")
    check(second.choices[0].finish_reason == "stop", f"tools: final finish_reason {second.choices[0].finish_reason!r}")
    out["call"] = {"id": call.id, "name": call.function.name, "arguments": json.loads(call.function.arguments)}
    out["text"] = final

    # Streaming round trip: accumulate tool-call deltas by index.
    stream = client.chat.completions.create(
        model=model,
        messages=user_messages("What is the weather in Paris?"),
        tools=[WEATHER_TOOL],
        stream=True,
    )
    acc = {}
    finish = None
    text_parts = []
    for chunk in stream:
        for ch in chunk.choices:
            if ch.delta.content:
                text_parts.append(ch.delta.content)
            for tc in ch.delta.tool_calls or []:
                slot = acc.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id:
                    check(slot["id"] in (None, tc.id), f"tools(stream): id changed {slot['id']!r} -> {tc.id!r}")
                    slot["id"] = tc.id
                if tc.function is not None:
                    if tc.function.name:
                        slot["name"] = (slot["name"] or "") + tc.function.name
                    if tc.function.arguments:
                        slot["arguments"] += tc.function.arguments
            if ch.finish_reason is not None:
                finish = ch.finish_reason
    check(finish == "tool_calls", f"tools(stream): finish_reason {finish!r}")
    check(list(acc.keys()) == [0], f"tools(stream): expected one tool call at index 0, got {acc!r}")
    check(not "".join(text_parts), f"tools(stream): unexpected text {''.join(text_parts)!r}")
    s = acc[0]
    check_tool_call(s["id"], s["name"], s["arguments"], "tools(stream)")
    stream = client.chat.completions.create(
        model=model,
        messages=tool_round_messages(s["id"], s["name"], s["arguments"]),
        tools=[WEATHER_TOOL],
        stream=True,
    )
    text, finish, _, _ = consume_text_stream(stream, "tools(stream) final")
    check_final(text, "tools(stream)")
    check(finish == "stop", f"tools(stream): final finish_reason {finish!r}")
    out["stream_call"] = {"id": s["id"], "name": s["name"], "arguments": json.loads(s["arguments"])}
    out["stream_text"] = text
    return out


def scenario_errors(client, model):
    out = {}
    try:
        client.chat.completions.create(model="nonexistent-model-x", messages=user_messages())
    except openai.NotFoundError as e:
        check(e.status_code == 404, f"errors: NotFoundError with status {e.status_code}")
        check("/v1/models" in str(e), f"errors: 404 message does not mention /v1/models: {e}")
        out["not_found"] = {"status": e.status_code, "message": str(e)}
    except openai.APIError as e:
        raise CheckFailed(f"errors: unknown model raised {type(e).__name__} instead of NotFoundError: {e}")
    else:
        raise CheckFailed("errors: unknown model did not raise")

    # A request without `model`: the gateway cannot route it and must refuse it itself (400),
    # whichever provider would have served it. Sent with the SDK's raw `post`, as the typed
    # `create` would not let a user omit it.
    try:
        client.post(
            "/chat/completions",
            cast_to=ChatCompletion,
            body={"messages": user_messages()},
        )
    except openai.BadRequestError as e:
        check(e.status_code == 400, f"errors: BadRequestError with status {e.status_code}")
        out["missing_model"] = {"status": e.status_code, "message": str(e)}
    except openai.APIError as e:
        raise CheckFailed(f"errors: request without model raised {type(e).__name__} instead of BadRequestError: {e}")
    else:
        raise CheckFailed("errors: request without model did not raise")

    # `messages` as a string (extra_body overrides the SDK-built field): refused by the gateway
    # itself with a 400, whether it would translate or relay the body.
    try:
        client.chat.completions.create(
            model=model, messages=user_messages(), extra_body={"messages": "this is not a list"}
        )
    except openai.BadRequestError as e:
        check(e.status_code == 400, f"errors: BadRequestError with status {e.status_code}")
        out["bad_messages"] = {"status": e.status_code, "message": str(e)}
    except openai.APIError as e:
        raise CheckFailed(f"errors: malformed request raised {type(e).__name__} instead of BadRequestError: {e}")
    else:
        raise CheckFailed("errors: malformed request (messages as a string) did not raise")
    return out


SCENARIOS = {
    "plain": scenario_plain,
    "stream": scenario_stream,
    "tools": scenario_tools,
    "errors": scenario_errors,
}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model, names = sys.argv[1], [s for s in sys.argv[2].split(",") if s]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {unknown}", file=sys.stderr)
        return 2
    client = OpenAI(timeout=30.0)
    summary = {"sdk": "openai", "sdk_version": openai.__version__, "model": model, "results": {}}
    failed = False
    for name in names:
        try:
            summary["results"][name] = {"ok": True, **SCENARIOS[name](client, model)}
        except CheckFailed as e:
            failed = True
            summary["results"][name] = {"ok": False, "error": str(e)}
            print(f"FAIL [openai sdk, {model}, {name}]: {e}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001
            failed = True
            summary["results"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            print(f"FAIL [openai sdk, {model}, {name}]: unexpected {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
