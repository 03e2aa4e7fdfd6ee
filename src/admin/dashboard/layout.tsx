import { CHART_CSS } from "./charts";
import { raw } from "hono/html";
import { type Role, roleAllows } from "../../lib/actor";
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { formatRelative, formatTime } from "./format";

/** What every page's frame needs: the CSP nonce of its stylesheet and the CSRF token of its forms. */
export interface PageContext {
  /** Nonce of the inline stylesheet (Content-Security-Policy). */
  nonce: string;
  /** The session's CSRF token; null for bearer callers and signed-out pages. */
  csrf: string | null;
  /** Server time the page was rendered at (epoch ms), for relative times. */
  now: number;
  /** The caller's role (null on the sign-in pages): pages show only the actions it allows. */
  role: Role | null;
  /** Who is signed in and their role (c.var.actor); null on signed-out pages. */
  who: { id: string; role: string } | null;
}

/** True when the page's caller may do what needs `need`. */
export const can = (page: PageContext, need: Role): boolean => page.role !== null && roleAllows(page.role, need);

const CSS = `
:root{--fg:#18202f;--muted:#5a6478;--bg:#f4f6f9;--card:#fff;--line:#dfe3ea;--accent:#1f56c3;--accent-fg:#fff;
--ok:#0f6b44;--ok-bg:#dff3e8;--warn:#7c4d00;--warn-bg:#fff1cc;--bad:#a8200d;--bad-bg:#fde6e2;--info:#1d4a9e;--info-bg:#e4ecfb;--mute-bg:#eceef2;
--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg);font-size:15px;line-height:1.45}
body{margin:0}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0}.skip:focus{left:8px;top:8px;background:#fff;padding:6px 10px;z-index:9}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
header.top{background:#14213d;color:#fff}
header.top .bar{max-width:1240px;margin:0 auto;padding:10px 20px;display:flex;align-items:center;gap:24px;flex-wrap:wrap}
header.top .brand{font-weight:700;letter-spacing:.2px;color:#fff;text-decoration:none;display:flex;align-items:center;gap:8px}
header.top .brand .dot{width:10px;height:10px;border-radius:50%;background:#5ad19a;display:inline-block}
header.top nav ul{list-style:none;margin:0;padding:0;display:flex;gap:4px}
header.top nav a{color:#cfd8ea;text-decoration:none;padding:6px 10px;border-radius:6px;display:block}
header.top nav a:hover{background:#23345c;color:#fff}
header.top nav a[aria-current=page]{background:#2b4278;color:#fff}
header.top .spacer{flex:1}
header.top form button{background:transparent;color:#cfd8ea;border:1px solid #3a4d78;padding:5px 12px}
header.top form button:hover{background:#23345c;color:#fff}
header.top .who{color:#cfd8ea;font-size:.88rem}
main{max-width:1240px;margin:0 auto;padding:22px 20px 48px}
h1{font-size:1.55rem;margin:0 0 4px}
h2{font-size:1.12rem;margin:0 0 12px}
h3{font-size:1rem;margin:0}
.sub{color:var(--muted);margin:0 0 18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:0 0 18px}
.card.flush{padding:0}.card.flush>h2,.card.flush>.head{padding:14px 18px 0}
.head{display:flex;align-items:center;gap:12px;flex-wrap:wrap;justify-content:space-between;margin-bottom:12px}
.head h2,.head h3{margin:0}
.row{display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.grid{display:grid;gap:12px;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));margin:0 0 18px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.stat .n{font-size:1.5rem;font-weight:650;display:block;font-variant-numeric:tabular-nums}
.stat .l{color:var(--muted);font-size:.85rem}
.stat.bad{border-color:#f1b5aa;background:var(--bad-bg)}.stat.warn{border-color:#f0d58a;background:var(--warn-bg)}
table{width:100%;border-collapse:collapse;font-size:.93rem}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;background:#fafbfc}
tbody th{font-size:inherit;text-transform:none;letter-spacing:0;color:var(--fg);background:none}
tbody th .small{font-weight:400}
tbody tr:hover{background:#f8fafd}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}
.mono,code,pre{font-family:var(--mono);font-size:.86rem}
pre{background:#0f1729;color:#e3e8f2;padding:12px 14px;border-radius:8px;overflow:auto;max-height:420px;margin:0;white-space:pre-wrap;word-break:break-word}
.muted{color:var(--muted)}.small{font-size:.85rem}.nowrap{white-space:nowrap}
h1.mono{font-size:1.3rem;word-break:break-all}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:.8rem;font-weight:600;white-space:nowrap;border:1px solid transparent}
.badge.ok{color:var(--ok);background:var(--ok-bg);border-color:#b6e2c9}
.badge.warn{color:var(--warn);background:var(--warn-bg);border-color:#f0d58a}
.badge.bad{color:var(--bad);background:var(--bad-bg);border-color:#f1b5aa}
.badge.info{color:var(--info);background:var(--info-bg);border-color:#bfd0f3}
.badge.muted{color:var(--muted);background:var(--mute-bg);border-color:#d5d9e1}
.notice{border-radius:8px;padding:10px 14px;margin:0 0 18px;border:1px solid}
.notice.ok{background:var(--ok-bg);border-color:#b6e2c9;color:var(--ok)}
.notice.warn{background:var(--warn-bg);border-color:#f0d58a;color:var(--warn)}
.notice.bad{background:var(--bad-bg);border-color:#f1b5aa;color:var(--bad)}
.notice.info{background:var(--info-bg);border-color:#bfd0f3;color:var(--info)}
ul.issues{margin:0;padding:0;list-style:none}
ul.issues li{padding:8px 0;border-bottom:1px solid var(--line);display:flex;gap:10px;align-items:baseline}
ul.issues li:last-child{border-bottom:0}
dl.kv{display:grid;grid-template-columns:minmax(140px,max-content) 1fr;gap:6px 18px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;word-break:break-word}
button,.button{font:inherit;border-radius:7px;border:1px solid var(--accent);background:var(--accent);color:var(--accent-fg);padding:6px 14px;cursor:pointer;text-decoration:none;display:inline-block;line-height:1.4}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:#fff;color:var(--bad);border-color:#e3a497}
button:hover{filter:brightness(.95)}
form.inline{display:inline}
form.filters{display:grid;gap:12px;grid-template-columns:2fr 1fr 1fr 1fr 1fr;align-items:end}
form.filters .wide{grid-column:1/-1;display:flex;gap:10px;align-items:center;justify-content:space-between;flex-wrap:wrap}
label{display:block;font-size:.85rem;color:var(--muted);margin-bottom:3px}
label.check{display:flex;gap:6px;align-items:center;color:var(--fg);font-size:.93rem;margin:0}
input[type=text],input[type=search],input[type=password],input[type=datetime-local],select{font:inherit;width:100%;padding:6px 9px;border:1px solid #c5cbd6;border-radius:7px;background:#fff;color:var(--fg)}
details>summary{cursor:pointer;color:var(--accent)}
.target{border-top:1px solid var(--line);padding:16px 18px}
.target:first-of-type{border-top:0}
.timeline{margin-top:12px}
.pager{display:flex;justify-content:space-between;align-items:center;padding:12px 18px}
.empty{padding:18px;color:var(--muted)}
.login{max-width:420px;margin:8vh auto}
.login .card{padding:26px 28px}
.login input{margin-bottom:14px}
.login button{width:100%;padding:8px 14px}
footer{max-width:1240px;margin:0 auto;padding:0 20px 30px;color:var(--muted);font-size:.8rem}
@media (max-width:860px){form.filters{grid-template-columns:1fr 1fr}}
${CHART_CSS}`;

/** Which navigation entry is current. */
export type NavKey = "overview" | "deliveries" | "issues" | "alerts" | "audit" | "people" | "none";

/** The page frame: head with the nonce'd stylesheet, navigation, sign-out, main content. */
export const Layout: FC<PropsWithChildren<{ title: string; page: PageContext; nav: NavKey; signedIn: boolean }>> = ({
  title,
  page,
  nav,
  signedIn,
  children,
}) => (
  <>
    {raw("<!doctype html>")}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex, nofollow" />
        <title>{`${title} · CentrePoint Edge Relay`}</title>
        <style nonce={page.nonce} dangerouslySetInnerHTML={{ __html: CSS }} />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <div class="bar">
            <a class="brand" href="/admin/">
              <span class="dot" aria-hidden="true" />
              CentrePoint Edge Relay
            </a>
            {signedIn && (
              <nav aria-label="Main">
                <ul>
                  <li>
                    <a href="/admin/" aria-current={nav === "overview" ? "page" : undefined}>
                      Overview
                    </a>
                  </li>
                  <li>
                    <a href="/admin/ui/deliveries" aria-current={nav === "deliveries" ? "page" : undefined}>
                      Deliveries
                    </a>
                  </li>
                  <li>
                    <a href="/admin/ui/issues" aria-current={nav === "issues" ? "page" : undefined}>
                      Issues
                    </a>
                  </li>
                  {can(page, "operator") && (
                    <li>
                      <a href="/admin/ui/audit" aria-current={nav === "audit" ? "page" : undefined}>
                        Audit
                      </a>
                    </li>
                  )}
                  <li>
                    <a href="/admin/ui/alerts" aria-current={nav === "alerts" ? "page" : undefined}>
                      Alerts
                    </a>
                  </li>
                  {can(page, "admin") && (
                    <li>
                      <a href="/admin/ui/people" aria-current={nav === "people" ? "page" : undefined}>
                        People
                      </a>
                    </li>
                  )}
                </ul>
              </nav>
            )}
            <span class="spacer" />
            {signedIn && page.who && (
              <span class="who">
                Signed in as <strong>{page.who.id}</strong> · {page.who.role}
              </span>
            )}
            {signedIn && page.csrf !== null && <PostForm action="/admin/logout" csrf={page.csrf} label="Sign out" variant="plain" />}
          </div>
        </header>
        <main id="main">{children}</main>
        <footer>Times are UTC. Rendered {formatTime(page.now)}.</footer>
      </body>
    </html>
  </>
);

/** Tone of a badge or notice. */
export type Tone = "ok" | "warn" | "bad" | "info" | "muted";

/** Something an operator should look at, with where to fix it. */
export interface Issue {
  tone: Tone;
  text: string;
  href: string;
}

/** A small coloured label; the text always says what the colour means. */
export const Badge: FC<PropsWithChildren<{ tone: Tone }>> = ({ tone, children }) => <span class={`badge ${tone}`}>{children}</span>;

/** A one-off message after an action (rendered from a fixed text, never from the query string). */
export type Flash = { tone: "ok" | "warn" | "bad"; text: string } | null;

/** A message box; `role=status` so screen readers announce it. */
export const Notice: FC<PropsWithChildren<{ tone: Tone }>> = ({ tone, children }) => (
  <div class={`notice ${tone}`} role={tone === "bad" ? "alert" : "status"}>
    {children}
  </div>
);

/** An absolute UTC time with the relative age beside it. */
export const Time: FC<{ ms: number | null | undefined; now: number; relative?: boolean }> = ({ ms, now, relative = true }) =>
  ms === null || ms === undefined ? (
    <span class="muted">—</span>
  ) : (
    <time datetime={new Date(ms).toISOString()} title={formatTime(ms)}>
      {relative ? formatRelative(ms, now) : formatTime(ms)}
    </time>
  );

/** A number with its label, for the stat grids. */
export const Stat: FC<{ value: Child; label: string; tone?: "bad" | "warn" }> = ({ value, label, tone }) => (
  <div class={`stat${tone ? ` ${tone}` : ""}`}>
    <span class="n">{value}</span>
    <span class="l">{label}</span>
  </div>
);

/**
 * A one-button POST form carrying the session's CSRF token (omitted for bearer callers, who
 * cannot be forged into a request). `fields` become hidden inputs.
 */
export const PostForm: FC<{
  action: string;
  csrf: string | null;
  label: string;
  fields?: Record<string, string>;
  variant?: "primary" | "secondary" | "danger" | "plain";
  describedBy?: string;
  /** A reason field for the audit trail: `required` where the action needs one (docs/audit.md). */
  reason?: "required" | "optional";
}> = ({ action, csrf, label, fields = {}, variant = "primary", describedBy, reason }) => (
  <form class="inline" method="post" action={action}>
    {csrf !== null && <input type="hidden" name="_csrf" value={csrf} />}
    {Object.entries(fields).map(([name, value]) => (
      <input type="hidden" name={name} value={value} />
    ))}
    {reason && (
      <input
        type="text"
        name="reason"
        maxlength={500}
        required={reason === "required"}
        placeholder={reason === "required" ? "Reason (required)" : "Reason (optional)"}
        aria-label={`Reason for “${label}”${reason === "required" ? " (required)" : ""}`}
      />
    )}
    <button type="submit" class={variant === "primary" || variant === "plain" ? undefined : variant} aria-describedby={describedBy}>
      {label}
    </button>
  </form>
);
