import type { FC } from "hono/jsx";
import { Layout, Notice, type PageContext } from "../layout";

/** Sign-in form: the admin token, posted once, exchanged for a session cookie. */
export const LoginPage: FC<{ page: PageContext; next: string; error: string | null; notice: string | null; access?: boolean }> = ({
  page,
  next,
  error,
  notice,
  access = false,
}) => (
  <Layout title="Sign in" page={page} nav="none" signedIn={false}>
    <div class="login">
      <div class="card">
        <h1>Sign in</h1>
        <p class="sub">
          Operator dashboard of the relay. Use the admin token (the <code>ADMIN_TOKEN</code> Worker secret).
        </p>
        {access && (
          <Notice tone="info">
            This relay is behind Cloudflare Access: <a href="/admin/">open the overview</a> and Access signs you in. This form is the break-glass sign-in with
            the admin token.
          </Notice>
        )}
        {notice && <Notice tone="info">{notice}</Notice>}
        {error && <Notice tone="bad">{error}</Notice>}
        <form method="post" action="/admin/login">
          <input type="hidden" name="next" value={next} />
          <label for="token">Admin token</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required autofocus aria-invalid={error ? "true" : undefined} />
          <button type="submit">Sign in</button>
        </form>
      </div>
      <p class="muted small">
        A session lasts 8 hours. Rotating <code>ADMIN_TOKEN</code> ends every session at once.
      </p>
    </div>
  </Layout>
);
