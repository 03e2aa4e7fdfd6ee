import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import { ADMIN_TOKEN } from "./helpers";

/** A browser's side of the dashboard in tests: GETs and same-origin form POSTs with a session cookie, sign-in, the CSRF field. */

/** The origin the tests browse. */
export const ORIGIN = "http://relay.test";

/** A GET as the browser sends it (redirects not followed). */
export const get = (path: string, cookie?: string) => exports.default.fetch(`${ORIGIN}${path}`, { headers: cookie ? { cookie } : {}, redirect: "manual" });

/** A same-origin form POST, as the browser sends it from a dashboard page. */
export function postForm(path: string, fields: Record<string, string>, opts: { cookie?: string; origin?: string | null; site?: string } = {}) {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.origin !== null) headers.origin = opts.origin ?? ORIGIN;
  if (opts.site) headers["sec-fetch-site"] = opts.site;
  return exports.default.fetch(`${ORIGIN}${path}`, { method: "POST", headers, body: new URLSearchParams(fields), redirect: "manual" });
}

/** Signs in; returns the Cookie header value of the session. */
export async function signIn(): Promise<string> {
  const res = await postForm("/admin/login", { token: ADMIN_TOKEN, next: "/admin/" });
  expect(res.status).toBe(303);
  const setCookie = res.headers.get("set-cookie") ?? "";
  return setCookie.split(";")[0]!;
}

/** The CSRF token in a page's forms. */
export function csrfOf(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  expect(m, "page has a CSRF field").not.toBeNull();
  return m![1]!;
}
