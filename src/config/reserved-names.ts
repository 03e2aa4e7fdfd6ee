/** Names no document may use as a secret: the relay's own secrets and every `[vars]` entry of wrangler.toml. */
export const RESERVED_SECRET_NAMES: readonly string[] = [
  "ADMIN_TOKEN",
  "FILE_LINK_SECRET",
  "FILE_LINK_SECRET_PREVIOUS",
  "MAX_BODY_BYTES",
  "ALLOW_HTTP_TARGETS",
  "RELAY_PUBLIC_URL",
  "CENTREPOINT_API_HOSTS",
  "ACCESS_TEAM_DOMAIN",
  "ACCESS_AUD",
];
