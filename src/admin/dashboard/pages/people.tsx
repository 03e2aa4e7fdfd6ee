import type { FC } from "hono/jsx";
import { ROLES, type Role } from "../../../lib/actor";
import { MAX_TOKEN_DAYS, DEFAULT_TOKEN_DAYS } from "../../routes/tokens.schemas";
import type { CreatedToken, ListedToken } from "../../service/tokens";
import { plural } from "../format";
import { Badge, type Flash, Layout, Notice, type PageContext, PostForm, Time } from "../layout";

/** What the People page shows: the roles document, the tokens not revoked, and a token just created (its only showing). */
export interface PeopleView {
  roles: Record<string, Role>;
  tokens: ListedToken[];
  notice: Flash;
  /** Set only on the answer of the creation form: the token is shown this once. */
  created: CreatedToken | null;
}

const RoleSelect: FC<{ id: string; selected?: Role }> = ({ id, selected = "viewer" }) => (
  <select id={id} name="role">
    {ROLES.map((r) => (
      <option value={r} selected={r === selected}>
        {r}
      </option>
    ))}
  </select>
);

/** `/admin/ui/people` (admin): who has which role through Cloudflare Access, and the named API tokens (docs/identity.md). */
export const PeoplePage: FC<{ page: PageContext; view: PeopleView }> = ({ page, view }) => {
  const identities = Object.entries(view.roles).sort(([a], [b]) => a.localeCompare(b));
  const csrf = page.csrf !== null && <input type="hidden" name="_csrf" value={page.csrf} />;
  return (
    <Layout title="People" page={page} nav="people" signedIn>
      <h1>People</h1>
      <p class="sub">
        Who may do what: people and Access service tokens by role (the roles document), and the named API tokens of machines. The break-glass admin token is
        always admin and is not listed. Every change is an audit entry.
      </p>
      {view.notice && <Notice tone={view.notice.tone}>{view.notice.text}</Notice>}
      {view.created && (
        <Notice tone="ok">
          <p>
            Token <strong>{view.created.name}</strong> ({view.created.role}) created; it expires <Time ms={Date.parse(view.created.expiresAt)} now={page.now} />
            . Copy it now: it is never shown again. Use it as <code>Authorization: Bearer …</code>.
          </p>
          <pre>
            <code id="new-token">{view.created.token}</code>
          </pre>
        </Notice>
      )}

      <section class="card flush" aria-labelledby="roles-h">
        <div class="head">
          <h2 id="roles-h">Roles</h2>
          <span class="muted small">{plural(identities.length, "identity", "identities")} with a role (Cloudflare Access)</span>
        </div>
        {identities.length === 0 ? (
          <p class="empty" role="status">
            Nobody has a role yet: only the admin token and API tokens can sign in.
          </p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Identity</th>
                  <th scope="col">Role</th>
                  <th scope="col">Remove</th>
                </tr>
              </thead>
              <tbody>
                {identities.map(([identity, role]) => (
                  <tr>
                    <th scope="row">{identity}</th>
                    <td>
                      <Badge tone={role === "admin" ? "warn" : role === "operator" ? "info" : "muted"}>{role}</Badge>
                    </td>
                    <td>
                      <PostForm
                        action="/admin/ui/people/roles/remove"
                        csrf={page.csrf}
                        label="Remove"
                        fields={{ identity }}
                        variant="danger"
                        reason="required"
                      />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <div class="target">
          <h3>Set a role</h3>
          <p class="muted small">A new identity is added; one already listed gets the new role.</p>
          <form class="filters" method="post" action="/admin/ui/people/roles">
            {csrf}
            <div>
              <label for="identity">Identity</label>
              <input type="text" id="identity" name="identity" required maxlength={320} placeholder="alice@site.org or service:ci-bot" />
            </div>
            <div>
              <label for="identity-role">Role</label>
              <RoleSelect id="identity-role" />
            </div>
            <div>
              <button type="submit">Set role</button>
            </div>
          </form>
        </div>
      </section>

      <section class="card flush" aria-labelledby="tokens-h">
        <div class="head">
          <h2 id="tokens-h">API tokens</h2>
          <span class="muted small">{plural(view.tokens.length, "token")} not revoked</span>
        </div>
        {view.tokens.length === 0 ? (
          <p class="empty" role="status">
            No API tokens.
          </p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Created by</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Revoke</th>
                </tr>
              </thead>
              <tbody>
                {view.tokens.map((t) => (
                  <tr>
                    <th scope="row">{t.name}</th>
                    <td>{t.role}</td>
                    <td class="mono">{t.createdBy}</td>
                    <td>
                      <Time ms={Date.parse(t.createdAt)} now={page.now} />
                    </td>
                    <td>{t.lastUsedAt === null ? <span class="muted">never</span> : <Time ms={Date.parse(t.lastUsedAt)} now={page.now} />}</td>
                    <td>
                      <Time ms={Date.parse(t.expiresAt)} now={page.now} relative={false} /> {t.expired && <Badge tone="bad">expired</Badge>}
                    </td>
                    <td>
                      <PostForm action={`/admin/ui/people/tokens/${t.id}/revoke`} csrf={page.csrf} label="Revoke" variant="danger" reason="required" />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <div class="target">
          <h3>Create a token</h3>
          <p class="muted small">Names are never reused, not even after revocation. The token is shown once, on the next page.</p>
          <form class="filters" method="post" action="/admin/ui/people/tokens">
            {csrf}
            <div>
              <label for="token-name">Name</label>
              <input type="text" id="token-name" name="name" required maxlength={64} placeholder="ci-bot" />
            </div>
            <div>
              <label for="token-role">Role</label>
              <RoleSelect id="token-role" />
            </div>
            <div>
              <label for="token-days">Expires in (days)</label>
              <input type="text" id="token-days" name="expiresInDays" inputmode="numeric" placeholder={`${DEFAULT_TOKEN_DAYS} (1-${MAX_TOKEN_DAYS})`} />
            </div>
            <div>
              <button type="submit">Create token</button>
            </div>
          </form>
        </div>
      </section>
    </Layout>
  );
};
