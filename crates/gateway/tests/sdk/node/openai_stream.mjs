// One streaming Chat Completions call through the Ekai Gateway with the official `openai` Node SDK.
// Usage: node openai_stream.mjs MODEL
// Env: OPENAI_BASE_URL=http://127.0.0.1:PORT/v1, OPENAI_API_KEY=anything.
// Asserts here (exit 1 with a message on failure); the last stdout line is a JSON summary.
import OpenAI from "openai";
import { readFileSync } from "node:fs";

// The installed SDK version, for the summary.
const SDK_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/openai/package.json", import.meta.url), "utf8"),
).version;

const PROMPT = "Say hello to the gateway";

function check(cond, msg) {
  if (!cond) {
    console.error(`FAIL [openai node sdk]: ${msg}`);
    process.exit(1);
  }
}

async function main() {
  const model = process.argv[2];
  check(model, "usage: node openai_stream.mjs MODEL");
  const client = new OpenAI({ timeout: 30_000 });
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: PROMPT }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    check(chunk.object === "chat.completion.chunk", `chunk object ${chunk.object}`);
    if (chunk.usage) {
      check(usage === null, "more than one usage chunk");
      check(chunk.choices.length === 0, `usage chunk has ${chunk.choices.length} choices`);
      usage = chunk.usage;
    }
    for (const choice of chunk.choices) {
      if (choice.delta?.content) text += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  check(text.startsWith("Hello from mock-"), `unexpected text ${JSON.stringify(text)}`);
  check(text.endsWith(PROMPT), `text does not echo the prompt: ${JSON.stringify(text)}`);
  check(finish === "stop", `finish_reason ${finish}`);
  check(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0, `usage ${JSON.stringify(usage)}`);
  console.log(
    JSON.stringify({ sdk: "openai-node", sdk_version: SDK_VERSION, model, text, finish_reason: finish, chunks, usage }),
  );
}

main().catch((e) => {
  console.error(`FAIL [openai node sdk]: ${e?.constructor?.name}: ${e?.message ?? e}`);
  process.exit(1);
});
