import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSimulateArgs, type SimulateOptions } from "../harness/simulator/args.ts";

const URL_ARG = ["--url", "http://127.0.0.1:8787/webhooks/demo"];
const parse = (...args: string[]) => parseSimulateArgs(args, () => 1234);
const options = (...args: string[]): SimulateOptions => {
  const r = parse(...URL_ARG, ...args);
  assert.ok(r.ok && r.value !== "help", r.ok ? "help" : r.error);
  return r.value as SimulateOptions;
};
const error = (...args: string[]): string => {
  const r = parse(...args);
  assert.ok(!r.ok, "expected an error");
  return r.error;
};

test("defaults: no credentials, no bad signatures, a random seed", () => {
  assert.deepEqual(options(), {
    url: "http://127.0.0.1:8787/webhooks/demo",
    credentials: { type: "none" },
    rate: 10,
    count: 40,
    subjects: 3,
    duplicates: 0.1,
    badSignatures: 0,
    concurrency: 4,
    seed: 1234,
    timeoutMs: 10_000,
    handshake: true,
    json: false,
  });
});

test("credentials: --secret, --basic user:pass (colons allowed in the password), --bearer; bad signatures default on", () => {
  assert.deepEqual(options("--secret", "s3").credentials, { type: "hmac", secret: "s3" });
  assert.equal(options("--secret", "s3").badSignatures, 0.05);
  assert.deepEqual(options("--basic", "cp:pa:ss").credentials, { type: "basic", username: "cp", password: "pa:ss" });
  assert.deepEqual(options("--bearer", "tok").credentials, { type: "bearer", token: "tok" });
});

test("every flag is read", () => {
  const o = options(
    "--secret",
    "s",
    "--rate",
    "25/s",
    "--count",
    "7",
    "--subjects",
    "2",
    "--duplicates",
    "20%",
    "--bad-signatures",
    "0.1",
    "--concurrency",
    "3",
    "--seed",
    "99",
    "--timeout",
    "500",
    "--no-handshake",
    "--json",
  );
  assert.deepEqual(
    {
      rate: o.rate,
      count: o.count,
      subjects: o.subjects,
      duplicates: o.duplicates,
      badSignatures: o.badSignatures,
      concurrency: o.concurrency,
      seed: o.seed,
      timeoutMs: o.timeoutMs,
      handshake: o.handshake,
      json: o.json,
    },
    { rate: 25, count: 7, subjects: 2, duplicates: 0.2, badSignatures: 0.1, concurrency: 3, seed: 99, timeoutMs: 500, handshake: false, json: true },
  );
});

test("--help", () => {
  assert.deepEqual(parse("--help"), { ok: true, value: "help" });
  assert.deepEqual(parse("-h"), { ok: true, value: "help" });
});

test("bad input gives a clear one-line error naming the flag", () => {
  assert.match(error(), /--url is required/);
  assert.match(error("--url", "not a url"), /--url is not an absolute URL/);
  assert.match(error("--url", "ftp://x/y"), /--url must be http/);
  assert.match(error(...URL_ARG, "--bogus"), /Unknown option '--bogus'/);
  assert.match(error(...URL_ARG, "--count"), /--count/);
  assert.match(error(...URL_ARG, "--count", "0"), /--count must be a whole number from 1/);
  assert.match(error(...URL_ARG, "--count", "1.5"), /--count must be a whole number/);
  assert.match(error(...URL_ARG, "--rate", "fast"), /--rate must be requests per second/);
  assert.match(error(...URL_ARG, "--rate", "0"), /--rate/);
  assert.match(error(...URL_ARG, "--duplicates", "2"), /--duplicates must be a fraction/);
  assert.match(error(...URL_ARG, "--duplicates", "-0.1"), /--duplicates/);
  assert.match(error(...URL_ARG, "--concurrency", "1000"), /--concurrency must be a whole number from 1 to 256/);
  assert.match(error(...URL_ARG, "--seed", "-1"), /--seed/);
  assert.match(error(...URL_ARG, "--secret", "a", "--bearer", "b"), /choose one of --secret, --basic, --bearer/);
  assert.match(error(...URL_ARG, "--basic", "nopassword"), /--basic must be "user:password"/);
  assert.match(error(...URL_ARG, "--basic", ":p"), /--basic/);
  assert.match(error(...URL_ARG, "--secret", ""), /--secret must not be empty/);
  assert.match(error(...URL_ARG, "--bad-signatures", "0.1"), /--bad-signatures needs --secret, --basic or --bearer/);
  assert.match(error(...URL_ARG, "--secret", "s", "--duplicates", "0.6", "--bad-signatures", "0.5"), /below 1/);
  assert.match(error(...URL_ARG, "extra"), /Unexpected argument 'extra'/);
});
