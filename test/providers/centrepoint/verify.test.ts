import { describe, expect, it } from "vitest";
import { verifyBasic, verifyBearer, verifyHmacSignature } from "../../../src/providers/centrepoint/verify";
import { detectHandshake } from "../../../src/providers/centrepoint/handshake";

const enc = (s: string) => new TextEncoder().encode(s);

describe("verifyHmacSignature", () => {
  it("accepts the documented test vector", async () => {
    expect((await verifyHmacSignature("B3`MlG4sJR.X^-%w=oG_UrNBEpszl?", enc('{"Test":"Value"}'), "Ri20SCicySZmIf2D4kCY5KWEJrsqI7W8sWXMADj1RaQ=")).ok).toBe(
      true,
    );
  });

  it("refuses the vector with one body byte changed, as a mismatch", async () => {
    expect(await verifyHmacSignature("B3`MlG4sJR.X^-%w=oG_UrNBEpszl?", enc('{"Test":"Value "}'), "Ri20SCicySZmIf2D4kCY5KWEJrsqI7W8sWXMADj1RaQ=")).toEqual({
      ok: false,
      error: "mismatch",
    });
  });

  it("classifies missing and malformed signatures", async () => {
    expect(await verifyHmacSignature("k", enc("{}"), undefined)).toEqual({ ok: false, error: "missing" });
    expect(await verifyHmacSignature("k", enc("{}"), "sha256=abcd")).toEqual({ ok: false, error: "malformed" });
    expect(await verifyHmacSignature("k", enc("{}"), "AAAA")).toEqual({ ok: false, error: "malformed" });
  });
});

describe("verifyBasic and verifyBearer", () => {
  it("accepts a password containing a colon", () => {
    expect(verifyBasic("u", "p:w", `Basic ${btoa("u:p:w")}`).ok).toBe(true);
  });

  it("accepts the scheme name in any casing", () => {
    expect(verifyBearer("t", "bearer t").ok).toBe(true);
    expect(verifyBasic("u", "p", `BASIC ${btoa("u:p")}`).ok).toBe(true);
  });

  it("refuses a prefix of the token", () => {
    expect(verifyBearer("token", "Bearer tok")).toEqual({ ok: false, error: "mismatch" });
  });
});

describe("detectHandshake", () => {
  it("prefers the header code over the body code", () => {
    expect(detectHandshake("validation", "from-header", { ValidationCode: "from-body" })).toEqual({
      ok: true,
      value: { code: "from-header", webhookId: null },
    });
  });

  it("returns null for ordinary events", () => {
    expect(detectHandshake("upload", undefined, { status: "started" })).toBeNull();
  });

  it("refuses a validation event without any code", () => {
    expect(detectHandshake("validation", undefined, {})?.ok).toBe(false);
  });
});
