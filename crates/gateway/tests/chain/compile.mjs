// Compiles one Solidity file with solc-js (standard JSON) and prints
// {"ContractName": {"abi": [...], "bytecode": "0x…"}} on stdout; errors go to stderr, exit 1.
import fs from 'node:fs';
import path from 'node:path';
import solc from 'solc';

const file = process.argv[2];
const input = {
  language: 'Solidity',
  sources: { [path.basename(file)]: { content: fs.readFileSync(file, 'utf8') } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'paris',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  for (const e of errors) process.stderr.write(e.formattedMessage + '\n');
  process.exit(1);
}
const result = {};
for (const contracts of Object.values(out.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    result[name] = { abi: c.abi, bytecode: '0x' + c.evm.bytecode.object };
  }
}
process.stdout.write(JSON.stringify(result));
