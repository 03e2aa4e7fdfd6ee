import assert from "node:assert/strict";
import { test } from "node:test";
import { HEADER } from "../src/providers/centrepoint/constants.ts";
import { centrepointHeaders, USER_AGENT, WIRE_NAME, withHeaders } from "../harness/centrepoint/headers.ts";
import { createRng } from "../harness/prng.ts";
import { basicAuthorization, credentialHeaders, signBody } from "../harness/centrepoint/signing.ts";

test("signBody reproduces the protocol reference's test vector", () => {
  assert.equal(signBody("B3`MlG4sJR.X^-%w=oG_UrNBEpszl?", '{"Test":"Value"}'), "Ri20SCicySZmIf2D4kCY5KWEJrsqI7W8sWXMADj1RaQ=");
});

test("signBody signs bytes and strings alike, UTF-8", () => {
  const body = '{"subject_identifier":"Zoë"}';
  assert.equal(signBody("k", Buffer.from(body, "utf8")), signBody("k", body));
});

test("basicAuthorization is RFC 7617", () => {
  assert.equal(basicAuthorization("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
});

test("credentialHeaders: a valid signature, and a well-formed wrong one when asked", () => {
  const body = '{"Test":"Value"}';
  const good = credentialHeaders({ type: "hmac", secret: "B3`MlG4sJR.X^-%w=oG_UrNBEpszl?" }, body);
  assert.deepEqual(good, { "X-ActiGraph-Signature": "Ri20SCicySZmIf2D4kCY5KWEJrsqI7W8sWXMADj1RaQ=" });
  const bad = credentialHeaders({ type: "hmac", secret: "B3`MlG4sJR.X^-%w=oG_UrNBEpszl?" }, body, false);
  assert.match(bad["X-ActiGraph-Signature"]!, /^[A-Za-z0-9+/]{43}=$/);
  assert.notEqual(bad["X-ActiGraph-Signature"], good["X-ActiGraph-Signature"]);
});

test("credentialHeaders: Basic, bearer, none", () => {
  assert.deepEqual(credentialHeaders({ type: "basic", username: "u", password: "p" }, "{}"), { Authorization: basicAuthorization("u", "p") });
  assert.notDeepEqual(credentialHeaders({ type: "basic", username: "u", password: "p" }, "{}", false), { Authorization: basicAuthorization("u", "p") });
  assert.deepEqual(credentialHeaders({ type: "bearer", token: "t" }, "{}"), { Authorization: "Bearer t" });
  assert.notDeepEqual(credentialHeaders({ type: "bearer", token: "t" }, "{}", false), { Authorization: "Bearer t" });
  assert.deepEqual(credentialHeaders({ type: "none" }, "{}"), {});
});

test("wire names are the relay's header names in the documented casing", () => {
  for (const [name, wire] of Object.entries(WIRE_NAME)) assert.equal(wire.toLowerCase(), name);
  assert.equal(WIRE_NAME[HEADER.registrationId], "X-ActiGraph-Webhook-id");
  assert.equal(Object.keys(WIRE_NAME).length, Object.keys(HEADER).length);
});

test("centrepointHeaders: what a captured delivery carries", () => {
  const h = centrepointHeaders({ event: "upload", deliveryId: "38a1d5a7-d3df-b80f-48a1-0535801b687b", webhookId: "74" }, createRng(1));
  assert.equal(h["X-ActiGraph-Event"], "upload");
  assert.equal(h["X-ActiGraph-Delivery"], "38a1d5a7-d3df-b80f-48a1-0535801b687b");
  assert.equal(h["X-ActiGraph-Webhook-id"], "74");
  assert.equal(h["X-Client-Cert-Used"], "False");
  assert.equal(h["User-Agent"], "ActiGraph-Hookshot/1.0 ActiGraph-Hookshot/1.0");
  assert.equal(USER_AGENT, h["User-Agent"]);
  assert.equal(h["Content-Type"], "application/json; charset=utf-8");
  assert.equal(h.Expect, "100-continue");
  assert.match(h.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
});

test("centrepointHeaders without an rng: no Expect or trace headers, defaults for event and webhook, credentials when given", () => {
  const h = centrepointHeaders({ signature: "c2ln", authorization: "Bearer t" });
  assert.deepEqual(h, {
    "X-ActiGraph-Webhook-id": "74",
    "X-ActiGraph-Event": "upload",
    "X-Client-Cert-Used": "False",
    "User-Agent": USER_AGENT,
    "Content-Type": "application/json; charset=utf-8",
    "X-ActiGraph-Signature": "c2ln",
    Authorization: "Bearer t",
  });
  assert.equal(centrepointHeaders({ deliveryId: "d-1" })["X-ActiGraph-Delivery"], "d-1");
});

test("withHeaders replaces and removes headers whatever their casing", () => {
  const base = centrepointHeaders({ deliveryId: "d-1", signature: "c2ln" });
  const h = withHeaders(base, { "content-type": "text/plain", "x-actigraph-signature": undefined, "x-extra": "1" });
  assert.equal(h["content-type"], "text/plain");
  assert.equal(h["Content-Type"], undefined);
  assert.equal(h["X-ActiGraph-Signature"], undefined);
  assert.equal(h["x-extra"], "1");
  assert.equal(h["X-ActiGraph-Delivery"], "d-1");
  assert.equal(Object.keys(h).filter((k) => k.toLowerCase() === "content-type").length, 1);
});
