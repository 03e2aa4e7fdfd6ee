import type { Context } from "hono";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { Listed, Loaded } from "../../config/store";
import { type AdminEnv, type AdminIdentity, csrfToken, formBinding } from "../../middleware/admin-auth";
import { Layout, Notice, type PageContext } from "./layout";

/** Rows per page of the dashboard's lists. */
export const PAGE_SIZE = 50;

/** A loaded document as the pages show it (null when it is missing). */
export function asListed<T>(id: string, loaded: Loaded<T>): Listed<T> | null {
  if (loaded.state === "valid") return { id, valid: true, config: loaded.config };
  return loaded.state === "invalid" ? { id, valid: false, errors: loaded.errors } : null;
}

async function pageContext(c: Context<AdminEnv>): Promise<PageContext> {
  const who = c.get("admin") as AdminIdentity | undefined; // unset on the sign-in pages
  const binding = who ? formBinding(who) : null;
  const actor = who ? c.var.actor : undefined;
  return {
    nonce: randomNonce(),
    csrf: binding === null ? null : await csrfToken(c.env, binding),
    now: Date.now(),
    role: actor?.role ?? null,
    who: actor ? { id: actor.id, role: actor.role } : null,
  };
}

/**
 * Sends a page with the dashboard's security headers: a CSP that allows only the nonce'd
 * stylesheet (no scripts at all), no framing, no caching, no referrer outside the origin.
 */
export async function render(
  c: Context<AdminEnv>,
  build: (page: PageContext) => JSX.Element,
  status: 200 | 201 | 400 | 401 | 403 | 404 | 409 | 429 | 500 | 503 = 200,
): Promise<Response> {
  const page = await pageContext(c);
  c.header("Content-Security-Policy", `default-src 'none'; style-src 'nonce-${page.nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
  c.header("Cache-Control", "no-store");
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "same-origin");
  return c.html(build(page), status);
}

/** An error page (404, 403 or 500) with the message and a link back to the overview. */
export function renderError(c: Context<AdminEnv>, status: 400 | 403 | 404 | 500 | 503, message: string): Promise<Response> {
  const title = status === 404 ? "Not found" : status === 403 || status === 400 ? "Refused" : "Error";
  const signedIn = c.get("admin") !== undefined;
  return render(
    c,
    (page) => (
      <Layout title={title} page={page} nav="none" signedIn={signedIn}>
        <h1>{title}</h1>
        <Notice tone={status === 404 ? "info" : "bad"}>{message}</Notice>
        <p>
          <a href="/admin/">Back to the overview</a>
        </p>
      </Layout>
    ),
    status,
  );
}

function randomNonce(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}
