// One streaming Messages call through the Ekai Gateway with the official `@anthropic-ai/sdk` Node SDK.
// Usage: node anthropic_stream.mjs MODEL
// Env: ANTHROPIC_BASE_URL=http://127.0.0.1:PORT, ANTHROPIC_API_KEY=anything.
// Asserts here (exit 1 with a message on failure); the last stdout line is a JSON summary.
import Anthropic from "@anthropic-ai/sdk";
import { readFileSync } from "node:fs";

// The installed SDK version, for the summary.
const SDK_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@anthropic-ai/sdk/package.json", import.meta.url), "utf8"),
).version;

const PROMPT = "Say hello to the gateway";

function check(cond, msg) {
  if (!cond) {
    console.error(`FAIL [anthropic node sdk]: ${msg}`);
    process.exit(1);
  }
}

async function main() {
  const model = process.argv[2];
  check(model, "usage: node anthropic_stream.mjs MODEL");
  const client = new Anthropic({ timeout: 30_000 });
  const stream = client.messages.stream({
    model,
    max_tokens: 256,
    messages: [{ role: "user", content: PROMPT }],
  });
  let text = "";
  let pieces = 0;
  stream.on("text", (delta) => {
    text += delta;
    pieces += 1;
  });
  const final = await stream.finalMessage();
  const finalText = final.content
    .filter((b) => b.type === "text")
    .map((b) => b.text)
    .join("");
  check(text.startsWith("Hello from mock-"), `unexpected text ${JSON.stringify(text)}`);
  check(text.endsWith(PROMPT), `text does not echo the prompt: ${JSON.stringify(text)}`);
  check(finalText === text, `final message text ${JSON.stringify(finalText)} != streamed ${JSON.stringify(text)}`);
  check(final.stop_reason === "end_turn", `stop_reason ${final.stop_reason}`);
  check(final.usage && final.usage.output_tokens > 0, `usage ${JSON.stringify(final.usage)}`);
  console.log(
    JSON.stringify({
      sdk: "anthropic-node",
      sdk_version: SDK_VERSION,
      model,
      text,
      pieces,
      stop_reason: final.stop_reason,
      usage: final.usage,
    }),
  );
}

main().catch((e) => {
  console.error(`FAIL [anthropic node sdk]: ${e?.constructor?.name}: ${e?.message ?? e}`);
  process.exit(1);
});
