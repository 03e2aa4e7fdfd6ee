import { runDurableObjectAlarm } from "cloudflare:test";
import { expect, it } from "vitest";
import { admin, freshId, ledgerOf, putTarget } from "../support/helpers";
import { get, signIn } from "../support/session";
import { outboxOf } from "../support/outbox";
import { CP_BASE, CP_CLIENT, dumpTables, historyDelivery, newReconciledSource, reconcilerOf, useFakeCentrePoint, useTestHooks } from "../support/reconcile";

/**
 * The API client's credentials and tokens never leave the isolate's memory: not in a log line, not
 * in an answer of the admin API or the dashboard, not in a stored row of the Reconciler, the ledger
 * or a target's outbox, also when CentrePoint's error text quotes them. Credentials CentrePoint sent
 * with a delivery (logged in its history) are redacted when the delivery is backfilled.
 */

const { lines } = useTestHooks();

it("keeps the client secret, the client id and every token out of logs, answers and stored rows", async () => {
  const { fake, spy, sent } = useFakeCentrePoint();
  const source = await newReconciledSource();
  const target = freshId("t");
  await putTarget(target, { url: "https://edc.example/hooks", sources: [source] });
  const basic = `Basic ${btoa("cp-user:cp-password-in-history")}`;
  const lost = historyDelivery(fake, 1, { responseCode: 401, headers: { Authorization: basic, "X-ActiGraph-Signature": "c2lnbmF0dXJlLW9mLXRoZS1ib2R5" } });

  const answers: string[] = [];
  const keep = async (res: Response) => void answers.push(`${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`);
  await keep(await admin(`/sources/${source}/reconcile`, { method: "POST" }));
  fake.expireTokens(); // a refresh: a second token
  await keep(await admin(`/sources/${source}/reconcile`, { method: "POST" }));
  await keep(await admin(`/sources/${source}/reconcile`));
  await keep(await admin(`/sources/${source}/registration`));
  // CentrePoint's error text quoting the secret it was sent.
  fake.expireTokens();
  fake.failNext(1, { status: 400, path: "/connect/token", contentType: "text/plain", body: `invalid client secret ${CP_CLIENT.clientSecret}` });
  await keep(await admin(`/sources/${source}/registration`));
  await keep(await admin(`/deliveries/${source}/${lost}`));
  await keep(await admin(`/deliveries?source=${source}`));
  await keep(await admin("/metrics"));
  const cookie = await signIn();
  for (const page of [`/admin/ui/sources/${source}`, "/admin/", `/admin/ui/deliveries/${source}/${lost}`]) await keep(await get(page, cookie));
  await runDurableObjectAlarm(ledgerOf(source));
  await runDurableObjectAlarm(outboxOf(target));
  expect(sent.map((s) => s.headers["webhook-id"])).toEqual([lost]);

  const tokens = spy.mock.calls
    .filter(([input]) => String(input).startsWith(CP_BASE))
    .map(([, init]) => new Headers(init?.headers).get("authorization"))
    .filter((a): a is string => a !== null)
    .map((a) => a.replace(/^Bearer /, ""));
  expect(new Set(tokens).size).toBe(2);
  expect(answers.some((a) => a.includes("CentrePoint refused the API credentials (HTTP 400): invalid client secret [redacted]"))).toBe(true);

  const stored = [await dumpTables(reconcilerOf(source)), await dumpTables(ledgerOf(source)), await dumpTables(outboxOf(target))].join("\n");
  expect(stored).toContain(lost); // the dump reads the rows it should
  expect(stored).toContain("[redacted]");
  const places = { logs: lines.join("\n"), answers: answers.join("\n"), stored, sentToTarget: JSON.stringify(sent) };
  for (const secret of [CP_CLIENT.clientSecret, CP_CLIENT.clientId, ...tokens, basic, "c2lnbmF0dXJlLW9mLXRoZS1ib2R5"]) {
    for (const [where, text] of Object.entries(places)) expect(text.includes(secret), `${secret.slice(0, 12)}… in ${where}`).toBe(false);
  }
});
