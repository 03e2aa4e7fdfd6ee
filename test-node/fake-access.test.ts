import assert from "node:assert/strict";
import { test } from "node:test";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { startFakeAccess } from "../harness/fake-access.ts";

async function certs(url: string) {
  const res = await fetch(`${url}/cdn-cgi/access/certs`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200);
  return (await res.json()) as { keys: Array<{ kid: string; kty: string }> };
}

test("the Access stand-in serves its keys on 127.0.0.1 and mints JWTs that verify against them", async () => {
  const access = await startFakeAccess({ audience: "aud-1" });
  try {
    assert.match(access.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const jwt = await access.mint({ email: "alice@site.org" });
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(await certs(access.url)), { algorithms: ["RS256"], issuer: access.url, audience: "aud-1" });
    assert.equal(payload.email, "alice@site.org");
    const service = await jwtVerify(await access.mint({ serviceToken: "ci-bot" }), createLocalJWKSet(await certs(access.url)), { audience: "aud-1" });
    assert.equal(service.payload.common_name, "ci-bot");
    assert.equal(service.payload.email, undefined);
    assert.equal(access.certFetches(), 2);
  } finally {
    await access.close();
  }
});

test("the Access stand-in rotates: a new key signs, the old one stays published until retired", async () => {
  const access = await startFakeAccess();
  try {
    const before = decodeProtectedHeader(await access.mint({ email: "a@b.org" })).kid;
    await access.rotate();
    const after = decodeProtectedHeader(await access.mint({ email: "a@b.org" })).kid;
    assert.notEqual(before, after);
    assert.deepEqual((await certs(access.url)).keys.map((k) => k.kid).sort(), [before, after].sort());
    access.retire();
    assert.deepEqual(
      (await certs(access.url)).keys.map((k) => k.kid),
      [after],
    );
  } finally {
    await access.close();
  }
});
