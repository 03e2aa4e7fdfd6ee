import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        // Test-only values; real deployments set these with `wrangler secret put`.
        bindings: {
          ADMIN_TOKEN: "test-admin-token",
          ALLOW_HTTP_TARGETS: "true",
          // Cloudflare Access on, with a loopback team domain whose keys test/identity/access-fake.ts serves
          // through a fetch mock (nothing listens there): requests without an Access JWT are unaffected.
          ACCESS_TEAM_DOMAIN: "http://127.0.0.1:9",
          ACCESS_AUD: "test-access-aud",
          // The registration check compares CentrePoint's webhook URL with <this>/webhooks/<source>.
          RELAY_PUBLIC_URL: "https://relay.example.org",
          TEST_HMAC_SECRET: "B3`MlG4sJR.X^-%w=oG_UrNBEpszl?",
          TEST_HMAC_SECRET_OLD: "test-previous-hmac-secret",
          TEST_BASIC_PASSWORD: "test-basic-password",
          TEST_BEARER_TOKEN: "test-bearer-token",
          TEST_TARGET_TOKEN: "test-target-token",
          TEST_REDCAP_TOKEN: "5A1B9C3D7E2F40618293A4B5C6D7E8F9",
          TEST_REDCAP_API_TOKEN: "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
          TEST_SIGNING_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
          // Alert channels (test/alerts/): a Slack incoming-webhook URL is a secret, and a channel's own signing key.
          TEST_SLACK_URL: "https://hooks.slack.example/services/T0001/B0001/slackSecretPart9f8e",
          TEST_ALERT_SIGNING_SECRET: "whsec_C2VjcmV0LWFsZXJ0LWNoYW5uZWwta2V5LTEyMzQ1Ng==",
          TEST_RAW_SIGNING_KEY: "test-raw-target-signing-key",
          TEST_CP_CLIENT_ID: "relay-test-client",
          TEST_CP_CLIENT_SECRET: "test-cp-client-secret-4a1f9c",
          // A second client-id secret naming the same client: a source using it has its own CentrePointClient.
          TEST_CP_CLIENT_ID_2: "relay-test-client",
          // Keys of the relay's file links (src/pull/links.ts); tests sign with both to show rotation.
          FILE_LINK_SECRET: "test-file-link-key-7d2e91",
          FILE_LINK_SECRET_PREVIOUS: "test-file-link-key-previous-03bb",
        },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**"],
  },
});
