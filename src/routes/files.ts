import { Hono } from "hono";
import { idSchema } from "../config/schemas";
import { loadConfig } from "../config/store";
import type { AppEnv } from "../env";
import { errorResponse } from "../lib/errors";
import { log } from "../lib/log";
import { clientFor } from "../pull/client";
import { linkKeys, verifyLink } from "../pull/links";

/**
 * `GET /files/:source/:fileId?t=&exp=&sig=`: a relay link to a CentrePoint data file (docs/pull.md,
 * "Durable links"). No admin token: the link itself is the credential. Checked in this order, each
 * refusal a JSON error that touches nothing upstream: a missing or forged signature 403, an expired
 * link 410, an unknown or disabled source or an unknown file 404. Then CentrePoint is asked for a fresh download URL, the
 * download is written to the source's ledger (who, which file, when, from which address), and the
 * answer is a 302 to it. The URL is never logged or stored.
 */
export const files = new Hono<AppEnv>();

files.get("/:source/:fileId", async (c) => {
  c.header("Cache-Control", "no-store");
  c.header("Referrer-Policy", "no-referrer");
  const keys = linkKeys(c.env);
  if (keys.length === 0) return errorResponse(c, 503, "links_disabled", "File links are off on this relay (FILE_LINK_SECRET is not set).");
  const { source, fileId } = c.req.param();
  const q = c.req.query();
  const claims = verifyLink({ source, fileId, target: q.t, exp: q.exp, sig: q.sig }, keys, Date.now());
  const ip = c.req.header("cf-connecting-ip") ?? null;
  if (!claims.ok) {
    log("info", "file link refused", { requestId: c.var.requestId, source, fileId, reason: claims.error, ip });
    return claims.error === "expired"
      ? errorResponse(c, 410, "gone", "This link has expired. Ask the relay's operator for the event again (a replay) or use CentrePoint.")
      : errorResponse(c, 403, "forbidden", "This link's signature is missing or does not match.");
  }
  const unknown = () => errorResponse(c, 404, "not_found", "Unknown source or file.");
  if (!idSchema.safeParse(source).success) return unknown();
  const loaded = await loadConfig(c.env.CONFIG, "source", source);
  if (loaded.state !== "valid" || !loaded.config.enabled || !loaded.config.centrepoint) return unknown(); // disabled: as if unknown
  const file = await c.env.PULLER.get(c.env.PULLER.idFromName(source)).file(fileId);
  if (!file) return unknown();

  const ledger = c.env.LEDGER.get(c.env.LEDGER.idFromName(source));
  const entry = { at: Date.now(), targetId: claims.value.target, fileId, deliveryId: file.deliveryId, clientIp: ip };
  const url = await clientFor(c.env, loaded.config.centrepoint).downloadUrl(source, fileId);
  if (!url.ok) {
    await ledger.recordDownload({ ...entry, outcome: `upstream_error: ${url.error.status ?? "no answer"}` });
    log("warn", "file link: CentrePoint gave no download URL", {
      requestId: c.var.requestId,
      source,
      fileId,
      target: claims.value.target,
      error: url.error.reason,
    });
    if (url.error.status === 429 || url.error.retryAfterMs !== null) {
      c.header("Retry-After", String(Math.max(1, Math.ceil((url.error.retryAfterMs ?? 1_000) / 1000))));
      return errorResponse(c, 503, "rate_limited", "CentrePoint's rate limit is reached; try again shortly.");
    }
    return errorResponse(c, 502, "upstream_error", "CentrePoint did not give a download URL for this file; try again later.", {
      upstream: { status: url.error.status },
    });
  }
  // Audited before the redirect: no download without its row.
  await ledger.recordDownload({ ...entry, outcome: "redirected" });
  log("info", "file link used", { requestId: c.var.requestId, source, fileId, target: claims.value.target, deliveryId: file.deliveryId, ip });
  return c.redirect(url.value.url, 302);
});
