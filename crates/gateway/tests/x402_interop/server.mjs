// The reference side of the x402 interop test: deploys an EIP-3009 token (Token.sol, compiled with
// npm `solc`) on a local anvil, then serves the official server middleware — `@x402/express` (v2) or
// `x402-express` (v1) — in front of the mock provider, with an offline facilitator built from the
// official packages (`@x402/core` + `@x402/evm` for v2, `x402/facilitator` for v1) settling on anvil.
//
// Environment: ANVIL_URL, MOCK_URL, PAYER (address funded with the token), PROTOCOL (v1 | v2).
// Prints one JSON line {"port", "token", "payTo"} once listening. GET /stats reports what the
// facilitator verified and settled and the token balances, read from the chain.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express from "express";
import solc from "solc";
import { createPublicClient, createWalletClient, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";

const here = path.dirname(fileURLToPath(import.meta.url));
const { ANVIL_URL, MOCK_URL, PAYER, PROTOCOL } = process.env;
// Anvil's second and third development accounts: the facilitator (pays gas) and the payee.
const FACILITATOR_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PAY_TO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const PRICE = "10000"; // 0.01 of a 6-decimal token

function compile() {
  const input = {
    language: "Solidity",
    sources: { "Token.sol": { content: fs.readFileSync(path.join(here, "Token.sol"), "utf8") } },
    settings: { optimizer: { enabled: true, runs: 200 }, outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  const c = out.contracts["Token.sol"].TestUSDC;
  return { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
}

const chain = { ...baseSepolia, rpcUrls: { default: { http: [ANVIL_URL] } } };
const account = privateKeyToAccount(FACILITATOR_KEY);
const publicClient = createPublicClient({ chain, transport: http(ANVIL_URL) });
const wallet = createWalletClient({ chain, transport: http(ANVIL_URL), account }).extend(publicActions);

const { abi, bytecode } = compile();
const deployHash = await wallet.deployContract({ abi, bytecode, args: ["USDC", "2", PAYER, 1000000000n] });
const token = (await publicClient.waitForTransactionReceipt({ hash: deployHash })).contractAddress;

const stats = { verify: [], settle: [] };
const balance = (a) => publicClient.readContract({ address: token, abi, functionName: "balanceOf", args: [a] });

const app = express();
const server = app.listen(0, "127.0.0.1");
await new Promise((r) => server.once("listening", r));
const port = server.address().port;

app.get("/stats", async (_req, res) => {
  const receipts = [];
  for (const s of stats.settle) {
    if (s.transaction) {
      const r = await publicClient.getTransactionReceipt({ hash: s.transaction });
      receipts.push({ hash: s.transaction, status: r.status });
    }
  }
  res.json({
    verify: stats.verify,
    settle: stats.settle,
    receipts,
    payer: (await balance(PAYER)).toString(),
    payTo: (await balance(PAY_TO)).toString(),
  });
});

if (PROTOCOL === "v1") {
  const { verify, settle } = await import("x402/facilitator");
  const { paymentMiddleware } = await import("x402-express");
  app.post("/facilitator/verify", express.json(), async (req, res) => {
    const r = await verify(wallet, req.body.paymentPayload, req.body.paymentRequirements);
    stats.verify.push(r);
    res.json(r);
  });
  app.post("/facilitator/settle", express.json(), async (req, res) => {
    const r = await settle(wallet, req.body.paymentPayload, req.body.paymentRequirements);
    stats.settle.push(r);
    res.json(r);
  });
  app.get("/facilitator/supported", (_req, res) =>
    res.json({ kinds: [{ x402Version: 1, scheme: "exact", network: "base-sepolia" }] }));
  const price = { amount: PRICE, asset: { address: token, decimals: 6, eip712: { name: "USDC", version: "2" } } };
  const route = { price, network: "base-sepolia", config: { description: "LLM call", mimeType: "application/json" } };
  app.use(paymentMiddleware(PAY_TO, { "POST /v1/chat/completions": route, "POST /v1/messages": route },
    { url: `http://127.0.0.1:${port}/facilitator` }));
} else {
  const { x402Facilitator } = await import("@x402/core/facilitator");
  const { ExactEvmScheme: ExactEvmFacilitator } = await import("@x402/evm/exact/facilitator");
  const { ExactEvmScheme: ExactEvmServer } = await import("@x402/evm/exact/server");
  const { toFacilitatorEvmSigner } = await import("@x402/evm");
  const { paymentMiddleware, x402ResourceServer } = await import("@x402/express");
  const signer = toFacilitatorEvmSigner({
    address: account.address,
    readContract: (a) => publicClient.readContract(a),
    verifyTypedData: (a) => publicClient.verifyTypedData(a),
    writeContract: (a) => wallet.writeContract(a),
    sendTransaction: (a) => wallet.sendTransaction(a),
    waitForTransactionReceipt: (a) => publicClient.waitForTransactionReceipt(a),
    getCode: (a) => publicClient.getCode(a),
  });
  const facilitator = new x402Facilitator().register("eip155:84532", new ExactEvmFacilitator(signer));
  const client = {
    verify: async (p, r) => { const v = await facilitator.verify(p, r); stats.verify.push(v); return v; },
    settle: async (p, r) => { const s = await facilitator.settle(p, r); stats.settle.push(s); return s; },
    getSupported: async () => facilitator.getSupported(),
  };
  const resourceServer = new x402ResourceServer(client).register("eip155:84532", new ExactEvmServer());
  const accepts = {
    scheme: "exact", network: "eip155:84532", payTo: PAY_TO, maxTimeoutSeconds: 60,
    price: { amount: PRICE, asset: token, extra: { name: "USDC", version: "2" } },
  };
  const route = { accepts, description: "LLM call", mimeType: "application/json" };
  app.use(paymentMiddleware({ "POST /v1/chat/completions": route, "POST /v1/messages": route }, resourceServer));
}

// Paid requests reach the mock provider; its answer (JSON or stream) is relayed as it arrives.
const relay = async (req, res) => {
  const headers = { "content-type": "application/json" };
  if (req.headers["anthropic-version"]) headers["anthropic-version"] = req.headers["anthropic-version"];
  const up = await fetch(MOCK_URL + req.path, { method: "POST", headers, body: req.body });
  res.status(up.status);
  res.setHeader("content-type", up.headers.get("content-type") || "application/json");
  for await (const chunk of up.body) res.write(chunk);
  res.end();
};
app.post("/v1/chat/completions", express.raw({ type: "*/*" }), relay);
app.post("/v1/messages", express.raw({ type: "*/*" }), relay);

process.stdout.write(JSON.stringify({ port, token, payTo: PAY_TO }) + "\n");
