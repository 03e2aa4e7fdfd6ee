/**
 * The body of a CloudEvents batch (`application/cloudevents-batch+json`): the envelopes, each
 * byte-exact as recorded, as one JSON array. No imports, so the Node tests (test-node/) check the
 * same function against the CloudEvents SDK, which does not load in workerd.
 */
export function batchBody(envelopes: readonly string[]): string {
  return `[${envelopes.join(",")}]`;
}
