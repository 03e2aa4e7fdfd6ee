import { parseArgs } from "node:util";
import { err, ok, type Result } from "../../src/lib/result.ts";
import type { Credentials } from "../centrepoint/signing.ts";

/** Everything one simulator run needs, validated. */
export interface SimulateOptions {
  /** The relay ingress, e.g. http://127.0.0.1:8787/webhooks/study-189. */
  url: string;
  credentials: Credentials;
  /** Requests started per second (at most). */
  rate: number;
  /** Deliveries after the handshake, duplicates and bad signatures included. */
  count: number;
  subjects: number;
  /** Fraction of `count` that re-sends an earlier delivery (same id, same body). */
  duplicates: number;
  /** Fraction of `count` sent with wrong credentials. */
  badSignatures: number;
  concurrency: number;
  seed: number;
  handshake: boolean;
  json: boolean;
  /** Per-request timeout, in ms. */
  timeoutMs: number;
}

/** `--help` text. */
export const USAGE = `Usage: npm run simulate -- --url <relay>/webhooks/<source> [options]

Sends what ActiGraph CentrePoint sends: a validation handshake, then per-subject event sequences.

  --url URL               relay ingress URL (required)
  --secret S              sign bodies with X-ActiGraph-Signature (HMAC-SHA256, base64)
  --basic USER:PASS       send Authorization: Basic instead
  --bearer TOKEN          send Authorization: Bearer instead
  --rate N[/s]            requests started per second (default 10)
  --count N               deliveries after the handshake (default 40)
  --subjects N            simulated subjects (default 3)
  --duplicates P          fraction re-sending an earlier delivery, 0-0.9 or "10%" (default 0.1)
  --bad-signatures P      fraction with wrong credentials (default 0.05 with credentials, else 0)
  --concurrency N         requests in flight at most (default 4)
  --seed N                PRNG seed for payloads and plan (default random; printed in the summary)
  --timeout MS            per-request timeout (default 10000)
  --no-handshake          skip the validation handshake
  --json                  print the summary as one JSON object on stdout
  -h, --help              show this help

Exit status: 0 if every response was the expected one, 1 otherwise, 2 on bad arguments.`;

const OPTIONS = {
  url: { type: "string" },
  secret: { type: "string" },
  basic: { type: "string" },
  bearer: { type: "string" },
  rate: { type: "string" },
  count: { type: "string" },
  subjects: { type: "string" },
  duplicates: { type: "string" },
  "bad-signatures": { type: "string" },
  concurrency: { type: "string" },
  seed: { type: "string" },
  timeout: { type: "string" },
  "no-handshake": { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parses simulator arguments; `"help"` when help was asked for, a one-line message on bad input. */
export function parseSimulateArgs(argv: string[], randomSeed: () => number): Result<SimulateOptions | "help", string> {
  const flags = readFlags(argv);
  if (!flags.ok) return flags;
  const values = flags.value;
  if (values.help) return ok("help");

  const url = parseUrl(values.url);
  if (!url.ok) return url;
  const credentials = parseCredentials(values);
  if (!credentials.ok) return credentials;
  const hasCredentials = credentials.value.type !== "none";
  const rate = parseRate(values.rate ?? "10");
  if (!rate.ok) return rate;
  const count = parseInteger("--count", values.count ?? "40", 1, 1_000_000);
  if (!count.ok) return count;
  const subjects = parseInteger("--subjects", values.subjects ?? "3", 1, 10_000);
  if (!subjects.ok) return subjects;
  const duplicates = parseFraction("--duplicates", values.duplicates ?? "0.1");
  if (!duplicates.ok) return duplicates;
  const badSignatures = parseFraction("--bad-signatures", values["bad-signatures"] ?? (hasCredentials ? "0.05" : "0"));
  if (!badSignatures.ok) return badSignatures;
  const concurrency = parseInteger("--concurrency", values.concurrency ?? "4", 1, 256);
  if (!concurrency.ok) return concurrency;
  const seed = values.seed === undefined ? ok(randomSeed() >>> 0) : parseInteger("--seed", values.seed, 0, 4_294_967_295);
  if (!seed.ok) return seed;
  const timeoutMs = parseInteger("--timeout", values.timeout ?? "10000", 100, 600_000);
  if (!timeoutMs.ok) return timeoutMs;

  if (badSignatures.value > 0 && !hasCredentials)
    return err("--bad-signatures needs --secret, --basic or --bearer (without credentials no request can be wrong)");
  if (duplicates.value + badSignatures.value >= 1) return err("--duplicates plus --bad-signatures must be below 1, to leave fresh events");

  return ok({
    url: url.value,
    credentials: credentials.value,
    rate: rate.value,
    count: count.value,
    subjects: subjects.value,
    duplicates: duplicates.value,
    badSignatures: badSignatures.value,
    concurrency: concurrency.value,
    seed: seed.value,
    timeoutMs: timeoutMs.value,
    handshake: !values["no-handshake"],
    json: values.json ?? false,
  });
}

/** Flag values as node:util parseArgs reads them; unknown flags and missing values are errors. */
function readFlags(argv: string[]) {
  try {
    return ok(parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }).values);
  } catch (e) {
    // parseArgs messages go on with advice about positionals; the first sentence is the point.
    return err((e as Error).message.split(". ")[0]!.replace(/\.$/, ""));
  }
}

/** An absolute http(s) URL. */
export function parseUrl(value: string | undefined): Result<string, string> {
  if (value === undefined) return err("--url is required, e.g. --url http://127.0.0.1:8787/webhooks/demo");
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") return err(`--url must be http:// or https://, got "${u.protocol}"`);
    return ok(u.toString());
  } catch {
    return err(`--url is not an absolute URL: "${value}"`);
  }
}

/** At most one of --secret, --basic user:pass, --bearer token. */
export function parseCredentials(values: { secret?: string; basic?: string; bearer?: string }): Result<Credentials, string> {
  const given = (["secret", "basic", "bearer"] as const).filter((k) => values[k] !== undefined);
  if (given.length > 1) return err(`choose one of --secret, --basic, --bearer (got ${given.map((g) => `--${g}`).join(", ")})`);
  if (values.secret !== undefined) return values.secret ? ok({ type: "hmac", secret: values.secret }) : err("--secret must not be empty");
  if (values.bearer !== undefined) return values.bearer ? ok({ type: "bearer", token: values.bearer }) : err("--bearer must not be empty");
  if (values.basic !== undefined) {
    const colon = values.basic.indexOf(":");
    if (colon < 1) return err('--basic must be "user:password"');
    return ok({ type: "basic", username: values.basic.slice(0, colon), password: values.basic.slice(colon + 1) });
  }
  return ok({ type: "none" });
}

/** A whole number within [min, max]. */
export function parseInteger(name: string, value: string, min: number, max: number): Result<number, string> {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) return err(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  return ok(n);
}

/** A fraction from 0 to 0.9, written `0.1` or `10%`. */
export function parseFraction(name: string, value: string): Result<number, string> {
  const m = /^(\d+(?:\.\d+)?|\.\d+)(%?)$/.exec(value.trim());
  const n = m ? Number(m[1]) / (m[2] ? 100 : 1) : Number.NaN;
  if (!(n >= 0 && n <= 0.9)) return err(`${name} must be a fraction from 0 to 0.9 (or 0% to 90%), got "${value}"`);
  return ok(n);
}

/** Requests per second, written `20` or `20/s`, from 0.1 to 10000. */
export function parseRate(value: string): Result<number, string> {
  const m = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(value.trim());
  const n = m ? Number(m[1]) : Number.NaN;
  if (!(n >= 0.1 && n <= 10_000)) return err(`--rate must be requests per second from 0.1 to 10000, e.g. 20 or 20/s, got "${value}"`);
  return ok(n);
}
