import http from "node:http";
import type { AddressInfo } from "node:net";
import { readBody } from "../http/body.ts";
import { redcapAnswer } from "./redcap.ts";

/**
 * Demo receivers that speak a system's own API, for the examples of docs/transforms.md: a REDCap
 * record import endpoint (harness/targets/redcap.ts) and a FHIR R4 Observation endpoint. Real HTTP
 * servers on 127.0.0.1 (random port) that keep what they accepted.
 */

/** A running system receiver. */
export interface SystemReceiver {
  name: string;
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Requests answered, by status. */
  answered: Map<number, number>;
  close: () => Promise<void>;
}

/** Starts a server that reads each request body (at most 1 MiB) and answers with `handle`. */
async function serve(
  name: string,
  log: (line: string) => void,
  handle: (method: string, contentType: string, body: string) => { status: number; body: string; contentType: string },
): Promise<SystemReceiver> {
  const answered = new Map<number, number>();
  const server = http.createServer((req, res) => {
    readBody(req, (body, tooLarge) => {
      const out = tooLarge
        ? { status: 413, body: '{"error":"too large"}', contentType: "application/json" }
        : handle(req.method ?? "", req.headers["content-type"] ?? "", body);
      answered.set(out.status, (answered.get(out.status) ?? 0) + 1);
      if (out.status >= 400) log(`${out.status} ${out.body.slice(0, 200)}`);
      res.writeHead(out.status, { "content-type": out.contentType }).end(out.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { name, url: `http://127.0.0.1:${port}`, answered, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A REDCap project's API: record imports with `token`, records kept by record_id in `records`. */
export async function startRedcapReceiver(options: {
  token: string;
  fields: readonly string[];
  log: (line: string) => void;
}): Promise<SystemReceiver & { records: Map<string, Record<string, string>> }> {
  const records = new Map<string, Record<string, string>>();
  const r = await serve("redcap", options.log, (method, contentType, body) =>
    method !== "POST"
      ? { status: 405, body: '{"error":"POST only"}', contentType: "application/json" }
      : { ...redcapAnswer({ token: options.token, fields: options.fields }, contentType, body, records), contentType: "application/json" },
  );
  return { ...r, records };
}

/** The R4 Observation fields the FHIR receiver requires (the resource's 1..1 elements and what the example sends). */
const REQUIRED = ["status", "code", "subject", "effectivePeriod", "valueQuantity"] as const;

/** A FHIR R4 server's `POST /Observation`: 201 with the stored resource, 400 with an OperationOutcome. */
export async function startFhirReceiver(options: { log: (line: string) => void }): Promise<SystemReceiver & { observations: Record<string, unknown>[] }> {
  const observations: Record<string, unknown>[] = [];
  const outcome = (diagnostics: string) => ({
    status: 400,
    body: JSON.stringify({ resourceType: "OperationOutcome", issue: [{ severity: "error", code: "invalid", diagnostics }] }),
    contentType: "application/fhir+json",
  });
  const r = await serve("fhir", options.log, (method, contentType, body) => {
    if (method !== "POST") return outcome("POST only");
    if (!/^application\/(fhir\+)?json/.test(contentType)) return outcome(`unsupported content type ${contentType}`);
    let resource: Record<string, unknown>;
    try {
      resource = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return outcome("the body is not JSON");
    }
    if (resource.resourceType !== "Observation") return outcome("resourceType must be Observation");
    const missing = REQUIRED.filter((k) => resource[k] === undefined);
    if (missing.length > 0) return outcome(`missing ${missing.join(", ")}`);
    const stored = { ...resource, id: String(observations.length + 1) };
    observations.push(stored);
    return { status: 201, body: JSON.stringify(stored), contentType: "application/fhir+json" };
  });
  return { ...r, observations };
}
