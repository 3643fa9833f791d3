// Reference tokenizers for llmpi's tests and benchmark. Reads texts, one JSON string per
// line, and writes, per line, the ids that the chosen reference gives, space-separated.
//   node ref_encode.mjs gpt-3-encoder  IN OUT   GPT-2's tokenizer (npm gpt-3-encoder)
//   node ref_encode.mjs tiktoken       IN OUT   GPT-2's tokenizer (npm js-tiktoken, "gpt2")
//   node ref_encode.mjs hf:DIR         IN OUT   DIR/tokenizer.json (+ tokenizer_config.json)
//                                                loaded by @huggingface/tokenizers
//   node ref_encode.mjs --bench IMPL FILE        encodes FILE (whole, as UTF-8) and prints
//                                                "<bytes> <tokens> <seconds>"
// "<|endoftext|>" inside a text is ordinary text for gpt-3-encoder and tiktoken (as in
// llmpi); @huggingface/tokenizers matches it as the special token (HF semantics).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function makeEncoder(impl) {
  if (impl === 'gpt-3-encoder') {
    const { encode } = require('gpt-3-encoder');
    return (t) => encode(t);
  }
  if (impl === 'tiktoken') {
    const { getEncoding } = require('js-tiktoken');
    const enc = getEncoding('gpt2');
    return (t) => enc.encode(t, [], []);
  }
  if (impl.startsWith('hf:')) {
    const dir = impl.slice(3);
    const { Tokenizer } = require('@huggingface/tokenizers');
    const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    const cfgPath = path.join(dir, 'tokenizer_config.json');
    const cfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, 'utf8')) : {};
    const tok = new Tokenizer(tj, cfg);
    return (t) => tok.encode(t, { add_special_tokens: false }).ids;
  }
  throw new Error(`unknown reference tokenizer '${impl}'`);
}

const args = process.argv.slice(2);
if (args[0] === '--bench') {
  const encode = makeEncoder(args[1]);
  const text = fs.readFileSync(args[2], 'utf8');
  const docs = text.split('\n%\n');  // fortune files: one document per quotation
  const t0 = process.hrtime.bigint();
  let tokens = 0;
  for (const d of docs) tokens += encode(d).length;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${Buffer.byteLength(text, 'utf8')} ${tokens} ${secs}`);
} else {
  const [impl, input, output] = args;
  const encode = makeEncoder(impl);
  const lines = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.length > 0);
  const out = lines.map((l) => encode(JSON.parse(l)).join(' ')).join('\n');
  fs.writeFileSync(output, out + (lines.length ? '\n' : ''));
}
