import { Hono } from "hono";
import { idSchema } from "../config/schemas";
import { loadConfig } from "../config/store";
import type { AppEnv } from "../env";
import { errorResponse } from "../lib/errors";
import { log } from "../lib/log";
import { linkKeys, verifyLink } from "../pull/links";

/**
 * `GET /files/:source/:fileId?t=&exp=&sig=`: a relay link to a CentrePoint data file (docs/pull.md,
 * "Durable links"). No admin token: the link itself is the credential. Checked in this order, each
 * refusal a JSON error that touches nothing upstream and writes no audit row: a missing or forged
 * signature 403, an expired link 410, an unknown or disabled source 404, a link whose target is
 * deleted, disabled or invalid 410 (revoked), the link's or the address's request limit 429 with
 * `Retry-After`, a file the source's enrichment never listed 404. Then the source's Puller hands out
 * a download URL (reused until shortly before its expiry, or fresh from CentrePoint; the API budget
 * refusing answers 503 with `Retry-After` without asking), the download is written to the source's
 * ledger (one row per link and outcome, counted), and the answer is a 302 to it. The URL is never
 * logged or stored.
 */
export const files = new Hono<AppEnv>();

/** Whole seconds for `Retry-After`, at least 1. */
const seconds = (ms: number | null) => String(Math.max(1, Math.ceil((ms ?? 1_000) / 1000)));

files.get("/:source/:fileId", async (c) => {
  c.header("Cache-Control", "no-store");
  c.header("Referrer-Policy", "no-referrer");
  const keys = linkKeys(c.env);
  if (keys.length === 0) return errorResponse(c, 503, "links_disabled", "File links are off on this relay (FILE_LINK_SECRET is not set).");
  const { source, fileId } = c.req.param();
  const q = c.req.query();
  const claims = verifyLink({ source, fileId, target: q.t, exp: q.exp, sig: q.sig }, keys, Date.now());
  const ip = c.req.header("cf-connecting-ip") ?? null;
  const refused = (reason: string) => log("info", "file link refused", { requestId: c.var.requestId, source, fileId, reason, ip });
  if (!claims.ok) {
    refused(claims.error);
    return claims.error === "expired"
      ? errorResponse(c, 410, "gone", "This link has expired. Ask the relay's operator for the event again (a replay) or use CentrePoint.")
      : errorResponse(c, 403, "forbidden", "This link's signature is missing or does not match.");
  }
  const target = claims.value.target;
  const unknown = () => errorResponse(c, 404, "not_found", "Unknown source or file.");
  if (!idSchema.safeParse(source).success) return unknown();
  const loaded = await loadConfig(c.env.CONFIG, "source", source);
  if (loaded.state !== "valid" || !loaded.config.enabled || !loaded.config.centrepoint) return unknown(); // disabled: as if unknown
  const issuedTo = idSchema.safeParse(target).success ? await loadConfig(c.env.CONFIG, "target", target) : ({ state: "missing" } as const);
  if (issuedTo.state !== "valid" || !issuedTo.config.enabled) {
    refused(`target ${issuedTo.state === "valid" ? "disabled" : issuedTo.state}`);
    return errorResponse(c, 410, "gone", "This link was revoked: the target it was issued to is disabled or no longer exists.");
  }

  const got = await c.env.PULLER.get(c.env.PULLER.idFromName(source)).download(fileId, target, ip);
  switch (got.kind) {
    case "unknown":
      return unknown();
    case "limited":
      refused(`${got.limit} rate limit`);
      c.header("Retry-After", seconds(got.retryAfterMs));
      return errorResponse(
        c,
        429,
        "rate_limited",
        got.limit === "link"
          ? "This link was used too often in the last minute; try again later."
          : "Too many file requests from this address; try again later.",
      );
    case "failed": {
      const fields = { requestId: c.var.requestId, source, fileId, target, error: got.reason };
      if (got.budget) {
        // The relay's API budget refused: CentrePoint was not asked, so there is no download to audit.
        log("info", "file link: the API budget is used up; not asked", fields);
        c.header("Retry-After", seconds(got.retryAfterMs));
        return errorResponse(c, 503, "rate_limited", "The relay's CentrePoint API budget is used up for now; try again shortly.");
      }
      const ledger = c.env.LEDGER.get(c.env.LEDGER.idFromName(source));
      await ledger.recordDownload({
        at: Date.now(),
        targetId: target,
        fileId,
        deliveryId: got.deliveryId,
        clientIp: ip,
        outcome: `upstream_error: ${got.status ?? "no answer"}`,
      });
      log("warn", "file link: CentrePoint gave no download URL", fields);
      if (got.status === 429 || got.retryAfterMs !== null) {
        c.header("Retry-After", seconds(got.retryAfterMs));
        return errorResponse(c, 503, "rate_limited", "CentrePoint's rate limit is reached; try again shortly.");
      }
      return errorResponse(c, 502, "upstream_error", "CentrePoint did not give a download URL for this file; try again later.", {
        upstream: { status: got.status },
      });
    }
    case "redirect": {
      // Audited before the redirect: no download without its row.
      const ledger = c.env.LEDGER.get(c.env.LEDGER.idFromName(source));
      await ledger.recordDownload({ at: Date.now(), targetId: target, fileId, deliveryId: got.deliveryId, clientIp: ip, outcome: "redirected" });
      log("info", "file link used", { requestId: c.var.requestId, source, fileId, target, deliveryId: got.deliveryId, ip, reused: got.reused });
      return c.redirect(got.url, 302);
    }
  }
});
