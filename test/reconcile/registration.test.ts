import { describe, expect, it } from "vitest";
import type { TargetConfig } from "../../src/config/schemas";
import type { Listed } from "../../src/config/store";
import { parseConfig } from "../../src/config/store";
import { compareRegistration, problemCount, sameUrl } from "../../src/reconcile/registration";

/** The registration check's comparison (src/reconcile/registration.ts), pure. */

const ALL_EVENTS = ["upload", "raw_processing_complete", "data_retrieval_complete", "daily_statistics_complete", "cp2_daily_statistics_complete"];
const PUBLIC = "https://relay.example.org";

function registration(overrides: { url?: string; isDisabled?: boolean; events?: string[] } = {}) {
  const events = overrides.events ?? ALL_EVENTS;
  return {
    url: overrides.url ?? `${PUBLIC}/webhooks/study-42`,
    isDisabled: overrides.isDisabled ?? false,
    webhookEvents: events.map((name, i) => ({ id: String(i + 3), name, description: null })),
  };
}

function target(id: string, doc: Record<string, unknown>): Listed<TargetConfig> {
  const parsed = parseConfig("target", { url: "https://edc.example/hooks", ...doc });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return { id, valid: true, config: parsed.value };
}

const compare = (reg: ReturnType<typeof registration>, targets: Listed<TargetConfig>[] = [], publicUrl: string | undefined = PUBLIC) =>
  compareRegistration({ sourceId: "study-42", registration: reg, publicUrl, targets });

describe("compareRegistration", () => {
  it("finds nothing wrong with a registration pointing here, enabled, subscribed to what the targets want", () => {
    expect(compare(registration(), [target("edc", { events: ["*"] })])).toEqual({
      expectedUrl: `${PUBLIC}/webhooks/study-42`,
      problems: [],
      notes: [],
    });
  });

  it("names a URL that points elsewhere", () => {
    const r = compare(registration({ url: "https://old-receiver.example.org/hook" }));
    expect(r.problems).toEqual([
      {
        code: "url_mismatch",
        message: expect.stringContaining(
          `CentrePoint sends this webhook to https://old-receiver.example.org/hook, not to this relay (${PUBLIC}/webhooks/study-42)`,
        ),
      },
    ]);
  });

  it("compares URLs by scheme, host (any case), default port and path, ignoring a trailing slash", () => {
    expect(compare(registration({ url: "HTTPS://Relay.Example.org:443/webhooks/study-42/" }), [], `${PUBLIC}/`).problems).toEqual([]);
    expect(sameUrl("https://a.example/x", "https://a.example/y")).toBe(false);
    expect(sameUrl("not a url", "not a url")).toBe(false);
  });

  it("says the URL was not compared when RELAY_PUBLIC_URL is unset, and that an invalid one is a problem", () => {
    const unset = compare(registration({ url: "https://anywhere.example/x" }), [], "");
    expect(unset.problems).toEqual([]);
    expect(unset.expectedUrl).toBeNull();
    expect(unset.notes).toEqual(["RELAY_PUBLIC_URL is not set, so the webhook's URL was not compared with this relay's address."]);
    expect(compare(registration(), [], "relay.example.org").problems.map((p) => p.code)).toEqual(["public_url_invalid"]);
  });

  it("names a disabled webhook", () => {
    expect(compare(registration({ isDisabled: true })).problems).toEqual([
      { code: "disabled", message: "The webhook is disabled in CentrePoint: it sends nothing until it is enabled again in the CentrePoint portal." },
    ]);
  });

  it("names each event a target wants that the webhook is not subscribed to, with the targets and kinds", () => {
    const targets = [
      target("edc-stats", { events: ["daily_statistics.*", "upload.completed"] }),
      target("warehouse", { events: ["daily_statistics.completed"] }),
      target("other-study", { events: ["*"], sources: ["study-7"] }),
      { id: "broken", valid: false as const, errors: [] },
    ];
    const r = compare(registration({ events: ["upload"] }), targets);
    expect(r.problems).toEqual([
      {
        code: "missing_event",
        message:
          "The webhook is not subscribed to daily_statistics_complete, but targets edc-stats, warehouse want daily_statistics.completed: those events never come. Subscribe the webhook to daily_statistics_complete in the CentrePoint portal, or change the targets' events.",
      },
    ]);
  });

  it("expects every event of a target that wants everything", () => {
    const r = compare(registration({ events: [] }), [target("all", { events: ["*"] })]);
    expect(r.problems.map((p) => p.message.split(",")[0])).toEqual(ALL_EVENTS.map((e) => `The webhook is not subscribed to ${e}`));
  });

  it("counts a registration that could not be read as one problem", () => {
    expect(problemCount({ problems: [], error: "CentrePoint answered HTTP 404" })).toBe(1);
    expect(problemCount({ problems: [{ code: "disabled", message: "" }], error: null })).toBe(1);
  });
});
