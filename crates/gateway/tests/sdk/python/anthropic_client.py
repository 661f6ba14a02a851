"""End-to-end client for the Ekai Gateway using the official `anthropic` Python SDK.

Usage: python anthropic_client.py MODEL SCENARIO[,SCENARIO...]

Scenarios: plain, stream, tools, errors. The base URL and key come from the environment
(ANTHROPIC_BASE_URL=http://127.0.0.1:PORT, ANTHROPIC_API_KEY=anything), exactly as a user would
configure the SDK. Every check is asserted here; on failure the script exits non-zero with a
message on stderr. The last stdout line is a JSON summary of what was observed.
"""

import json
import sys
import traceback
import warnings

import anthropic
from anthropic import Anthropic
from anthropic.types import Message

PROMPT = "Say hello to the gateway"
TOOL_RESULT = "18C and sunny"
MAX_TOKENS = 256
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City name"}},
        "required": ["location"],
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


def text_of(message):
    return "".join(b.text for b in message.content if b.type == "text")


def check_usage(usage, where):
    check(usage is not None, f"{where}: no usage")
    check(usage.input_tokens > 0, f"{where}: input_tokens {usage.input_tokens}")
    check(usage.output_tokens > 0, f"{where}: output_tokens {usage.output_tokens}")


def scenario_plain(client, model):
    msg = client.messages.create(model=model, max_tokens=MAX_TOKENS, messages=user_messages())
    check(msg.type == "message", f"plain: type is {msg.type!r}")
    check(msg.role == "assistant", f"plain: role is {msg.role!r}")
    check([b.type for b in msg.content] == ["text"], f"plain: content blocks {[b.type for b in msg.content]}")
    text = text_of(msg)
    check_text(text, "plain")
    check(msg.stop_reason == "end_turn", f"plain: stop_reason {msg.stop_reason!r}")
    check_usage(msg.usage, "plain")
    return {
        "text": text,
        "stop_reason": msg.stop_reason,
        "model": msg.model,
        "usage": {"input_tokens": msg.usage.input_tokens, "output_tokens": msg.usage.output_tokens},
    }


def scenario_stream(client, model):
    parts = []
    with client.messages.stream(model=model, max_tokens=MAX_TOKENS, messages=user_messages()) as stream:
        for piece in stream.text_stream:
            parts.append(piece)
        final = stream.get_final_message()
    text = "".join(parts)
    check_text(text, "stream")
    check(text_of(final) == text, f"stream: final message text {text_of(final)!r} != streamed {text!r}")
    check(final.stop_reason == "end_turn", f"stream: stop_reason {final.stop_reason!r}")
    check_usage(final.usage, "stream")
    return {
        "text": text,
        "pieces": len(parts),
        "stop_reason": final.stop_reason,
        "usage": {"input_tokens": final.usage.input_tokens, "output_tokens": final.usage.output_tokens},
    }


def tool_use_of(message, where):
    check(message.stop_reason == "tool_use", f"{where}: stop_reason {message.stop_reason!r}")
    uses = [b for b in message.content if b.type == "tool_use"]
    check(len(uses) == 1, f"{where}: expected 1 tool_use block, got {[b.type for b in message.content]}")
    use = uses[0]
    check(isinstance(use.id, str) and use.id, f"{where}: tool_use without id")
    check(use.name == "get_weather", f"{where}: tool name {use.name!r}")
    check(use.input == {"location": "Paris"}, f"{where}: tool input {use.input!r}")
    return use


def tool_round_messages(first):
    use = [b for b in first.content if b.type == "tool_use"][0]
    return user_messages("What is the weather in Paris?") + [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT}],
        },
    ]


def check_final(text, where):
    check(
        "Tool result received: " + TOOL_RESULT in text,
        f"{where}: final answer does not acknowledge the tool result: {text!r}",
    )


def scenario_tools(client, model):
    out = {}
    question = user_messages("What is the weather in Paris?")
    first = client.messages.create(model=model, max_tokens=MAX_TOKENS, messages=question, tools=[WEATHER_TOOL])
    use = tool_use_of(first, "tools")
    second = client.messages.create(
        model=model, max_tokens=MAX_TOKENS, messages=tool_round_messages(first), tools=[WEATHER_TOOL]
    )
    final = text_of(second)
    check_final(final, "tools")
    check(second.stop_reason == "end_turn", f"tools: final stop_reason {second.stop_reason!r}")
    out["call"] = {"id": use.id, "name": use.name, "arguments": use.input}
    out["text"] = final

    # Streaming round trip through the SDK's stream helper (it accumulates input_json deltas).
    json_parts = []
    with client.messages.stream(
        model=model, max_tokens=MAX_TOKENS, messages=question, tools=[WEATHER_TOOL]
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                json_parts.append(event.delta.partial_json)
        first_s = stream.get_final_message()
    use_s = tool_use_of(first_s, "tools(stream)")
    check(
        json.loads("".join(json_parts)) == {"location": "Paris"},
        f"tools(stream): streamed input_json deltas {json_parts!r}",
    )
    parts = []
    with client.messages.stream(
        model=model, max_tokens=MAX_TOKENS, messages=tool_round_messages(first_s), tools=[WEATHER_TOOL]
    ) as stream:
        for piece in stream.text_stream:
            parts.append(piece)
        second_s = stream.get_final_message()
    text = "".join(parts)
    check_final(text, "tools(stream)")
    check(text_of(second_s) == text, f"tools(stream): final message text {text_of(second_s)!r} != {text!r}")
    check(second_s.stop_reason == "end_turn", f"tools(stream): final stop_reason {second_s.stop_reason!r}")
    check_usage(second_s.usage, "tools(stream)")
    out["stream_call"] = {"id": use_s.id, "name": use_s.name, "arguments": use_s.input}
    out["stream_text"] = text
    return out


def scenario_errors(client, model):
    out = {}
    try:
        client.messages.create(model="nonexistent-model-x", max_tokens=MAX_TOKENS, messages=user_messages())
    except anthropic.NotFoundError as e:
        check(e.status_code == 404, f"errors: NotFoundError with status {e.status_code}")
        check("/v1/models" in str(e), f"errors: 404 message does not mention /v1/models: {e}")
        out["not_found"] = {"status": e.status_code, "message": str(e)}
    except anthropic.APIError as e:
        raise CheckFailed(f"errors: unknown model raised {type(e).__name__} instead of NotFoundError: {e}")
    else:
        raise CheckFailed("errors: unknown model did not raise")

    # A request without `model`: the gateway cannot route it and must refuse it itself (400),
    # whichever provider would have served it. Sent with the SDK's raw `post`, as the typed
    # `create` would not let a user omit it.
    try:
        client.post(
            "/v1/messages",
            cast_to=Message,
            body={"max_tokens": MAX_TOKENS, "messages": user_messages()},
        )
    except anthropic.BadRequestError as e:
        check(e.status_code == 400, f"errors: BadRequestError with status {e.status_code}")
        out["missing_model"] = {"status": e.status_code, "message": str(e)}
    except anthropic.APIError as e:
        raise CheckFailed(f"errors: request without model raised {type(e).__name__} instead of BadRequestError: {e}")
    else:
        raise CheckFailed("errors: request without model did not raise")

    # `messages` as a string (extra_body overrides the SDK-built field): refused by the gateway
    # itself with a 400, whether it would translate or relay the body.
    try:
        client.messages.create(
            model=model,
            max_tokens=MAX_TOKENS,
            messages=user_messages(),
            extra_body={"messages": "this is not a list"},
        )
    except anthropic.BadRequestError as e:
        check(e.status_code == 400, f"errors: BadRequestError with status {e.status_code}")
        out["bad_messages"] = {"status": e.status_code, "message": str(e)}
    except anthropic.APIError as e:
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
    # The SDK warns about deprecated model names; irrelevant for a gateway test.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    client = Anthropic(timeout=30.0)
    summary = {"sdk": "anthropic", "sdk_version": anthropic.__version__, "model": model, "results": {}}
    failed = False
    for name in names:
        try:
            summary["results"][name] = {"ok": True, **SCENARIOS[name](client, model)}
        except CheckFailed as e:
            failed = True
            summary["results"][name] = {"ok": False, "error": str(e)}
            print(f"FAIL [anthropic sdk, {model}, {name}]: {e}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001
            failed = True
            summary["results"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            print(f"FAIL [anthropic sdk, {model}, {name}]: unexpected {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
