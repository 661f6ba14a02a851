"""The official `openai` SDK's AzureOpenAI client pointed at the Ekai Gateway, as if the gateway
were an Azure OpenAI resource.

Usage: python azure_client.py DEPLOYMENT EMBEDDING_DEPLOYMENT

AzureOpenAI reads AZURE_OPENAI_ENDPOINT (the gateway), AZURE_OPENAI_API_KEY and
OPENAI_API_VERSION from the environment, and calls
`{endpoint}/openai/deployments/{deployment}/…?api-version=…` with an `api-key` header. The gateway
serves those paths and routes the deployment name as the model. The last stdout line is a JSON
summary.
"""

import json
import sys

import openai
from openai import AzureOpenAI

PROMPT = "Say hello to the gateway"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    deployment, embedding = sys.argv[1], sys.argv[2]
    client = AzureOpenAI(timeout=30.0)
    summary = {"sdk": "openai", "sdk_version": openai.__version__}

    raw = client.chat.completions.with_raw_response.create(
        model=deployment, messages=[{"role": "user", "content": PROMPT}]
    )
    summary["request_url"] = str(raw.http_request.url)
    summary["sent_api_key"] = "api-key" in raw.http_request.headers
    summary["provider"] = raw.headers.get("x-ekai-provider")
    resp = raw.parse()
    text = resp.choices[0].message.content
    check(text.startswith("Hello from mock-") and text.endswith(PROMPT), f"plain: {text!r}")
    summary["text"] = text

    parts = []
    usage = None
    for chunk in client.chat.completions.create(
        model=deployment,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    check("".join(parts).endswith(PROMPT), f"stream: {''.join(parts)!r}")
    check(usage is not None and usage.prompt_tokens > 0, f"stream usage {usage}")
    summary["stream_text"] = "".join(parts)

    emb = client.embeddings.create(model=embedding, input="a b c")
    check(len(emb.data) == 1 and len(emb.data[0].embedding) == 8, f"embeddings: {emb}")
    summary["embedding_tokens"] = emb.usage.prompt_tokens
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
