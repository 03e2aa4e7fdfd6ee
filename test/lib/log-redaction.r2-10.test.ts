import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { log } from "../../src/lib/log";
import wranglerToml from "../../wrangler.toml?raw";

/**
 * Review 2, finding 10: a file link's signature is its credential until it expires, and it sits in
 * the query string. No log line may carry it: the relay's own request line redacts it, log() redacts
 * token-like query parameters wherever a URL appears, and Workers Logs' invocation logs (which
 * record every request's full URL) are off.
 */

const lines: string[] = [];
beforeEach(() => {
  lines.length = 0;
  for (const level of ["log", "warn", "error"] as const) vi.spyOn(console, level).mockImplementation((line: unknown) => void lines.push(String(line)));
});
afterEach(() => vi.restoreAllMocks());

const SIG = "q7PZ0nH4xLr2T9vKcW1mEo3BsY8aDfGuJi6lNpRtVw5";

describe("logged URLs", () => {
  it("a /files request gets one request line with its path and parameters, the signature redacted", async () => {
    const res = await exports.default.fetch(`https://relay.example.org/files/study-1/file-9?t=edc-1&exp=4102444800&sig=${SIG}`, {
      headers: { "cf-connecting-ip": "198.51.100.7" },
    });
    expect(res.status).toBe(403);
    const request = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "request");
    expect(request).toMatchObject({ method: "GET", url: "/files/study-1/file-9?t=edc-1&exp=4102444800&sig=[redacted]", status: 403 });
    expect(lines.join("\n")).not.toContain(SIG);
  }, 20_000); // the file's first request starts the Worker

  it("log() redacts token-like query parameters in any field, error texts included", () => {
    log("warn", "something failed", {
      error: `GET https://blob.example/f.avro?se=2100-01-01&sig=${SIG}&sp=r failed`,
      link: `/files/a/b?token=${SIG}`,
      nested: { url: `https://x.example/cb?code=1&access_token=${SIG}` },
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(SIG);
    expect(JSON.parse(lines[0]!)).toMatchObject({ error: "GET https://blob.example/f.avro?se=2100-01-01&sig=[redacted]&sp=r failed" });
  });

  it("Workers Logs' invocation logs, which record every request's full URL, are off in wrangler.toml", () => {
    expect(wranglerToml).toMatch(/\[observability\.logs\][^[]*\ninvocation_logs = false\n/);
  });
});
