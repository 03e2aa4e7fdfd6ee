import { runDurableObjectAlarm } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { get, signIn } from "../support/session";
import { admin, ledgerOf } from "../support/helpers";
import { outboxOf } from "../support/outbox";
import { CP_BASE, dumpTables } from "../support/reconcile";
import {
  completeRequests,
  cpClientOf,
  LINK_KEY,
  newPullSource,
  newTargetOf,
  PREVIOUS_LINK_KEY,
  pullerOf,
  push,
  settle,
  triggerRaw,
  uploadBodyOf,
  useFakeCentrePoint,
  useTestHooks,
} from "../support/pull";

/**
 * What the pull side must never keep or pass on: a subject's date of birth, gender, weight and
 * height (the fake CentrePoint sends them with every subject), the file-link keys, and the API's
 * tokens. Every table of every object involved, every answer, every log line, every sent body.
 */

const { lines, advance } = useTestHooks();

/** Text CentrePoint's subject answer carries that the relay must drop (the fake's values: dob 1980-01-01, Male/Female, 150 Pounds, 65 Inches, Left Wrist). */
const PERSONAL = ['"dob"', "1980-01-01", '"gender"', '"weight"', '"height"', "Pounds", "Inches", "wearPosition", "Left Wrist"];

describe("data minimisation and secrets", () => {
  it("never stores, answers, logs or sends date of birth, gender, weight or height, the link keys, or a token", async () => {
    const { fake, sent, spy } = useFakeCentrePoint();
    const source = await newPullSource({ autoRequest: { fileFormat: "avro" } });
    const target = await newTargetOf(source, { enrich: ["subject", "upload", "datafiles"] });
    const upload = await push(source, uploadBodyOf(8001, 1));
    const trigger = await triggerRaw(source, 8002, "2099-12-20T00:00:00Z", "2099-12-20T01:00:00Z");
    const [done] = await completeRequests(fake, source, advance);
    await settle(source, [target]);
    await runDurableObjectAlarm(ledgerOf(source));
    await runDurableObjectAlarm(outboxOf(target));
    const envelopes = sent.filter((s) => s.url.endsWith(`/${target}`)).map((s) => JSON.parse(s.body) as Record<string, any>);
    expect(envelopes.map((e) => e.data.enrichment?.status)).toEqual(["complete", "complete", "complete"]);
    const link = envelopes.find((e) => e.id === done!.deliveryId)!.data.enrichment.dataFiles[0].link as string;
    expect((await exports.default.fetch(link, { redirect: "manual" })).status).toBe(302);

    const answers: string[] = [];
    const keep = async (res: Response) => void answers.push(`${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`);
    for (const id of [upload, trigger, done!.deliveryId]) await keep(await admin(`/deliveries/${source}/${id}`));
    await keep(await admin(`/sources/${source}/raw-requests`));
    await keep(await admin(`/sources/${source}/downloads`));
    await keep(await admin("/metrics"));
    const cookie = await signIn();
    for (const page of ["/admin/", `/admin/ui/deliveries/${source}/${upload}`, `/admin/ui/deliveries/${source}/${done!.deliveryId}`])
      await keep(await get(page, cookie));

    const stored = [
      await dumpTables(ledgerOf(source)),
      await dumpTables(pullerOf(source)),
      await dumpTables(cpClientOf()),
      await dumpTables(outboxOf(target)),
    ].join("\n");
    expect(stored).toContain("SUBJ-8001"); // the dump reads the rows it should: the subject fact is stored
    const tokens = spy.mock.calls
      .filter(([input]) => String(input).startsWith(CP_BASE))
      .map(([, init]) => new Headers(init?.headers).get("authorization"))
      .filter((a): a is string => a !== null)
      .map((a) => a.replace(/^Bearer /, ""));
    expect(tokens.length).toBeGreaterThan(0);
    const places = {
      logs: lines.join("\n"),
      answers: answers.join("\n"),
      stored,
      sentToTarget: JSON.stringify(sent.filter((s) => !s.url.startsWith(CP_BASE))),
    };
    for (const text of [...PERSONAL, LINK_KEY, PREVIOUS_LINK_KEY, ...tokens])
      for (const [where, value] of Object.entries(places)) expect(value.includes(text), `${text.slice(0, 16)} in ${where}`).toBe(false);
  });
});
