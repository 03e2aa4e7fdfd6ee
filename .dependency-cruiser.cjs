/**
 * Layers of src/ (docs: README "Layout"; rule: docs STYLE "Layers"). `npm run lint:layers` checks them.
 *
 *   HTTP and wiring   routes/ admin/ middleware/ app.ts index.ts cron.ts
 *          ↓
 *   domain            reconcile/ → ledger/ → pull/ → outbox/
 *          ↓
 *   reporting         alerts/ (issues)  audit/ (the trail)
 *          ↓
 *   audit trail       audit/ (HTTP and domain folders record through it)
 *          ↓
 *   adapters, config  providers/centrepoint/  config/
 *          ↓
 *   lib               lib/ env.ts version.ts
 *
 * Imports point down, or sideways inside one folder. The HTTP tier may import itself across folders
 * (app.ts mounts admin/ and routes/; middleware/ guards admin/): it is the wiring, nothing sits above it.
 * providers/centrepoint/ and config/ are one tier and may import each other: the configuration
 * validates CentrePoint's vocabulary (event kinds, file formats) and the provider reads its settings and
 * secrets through config/; no-circular keeps that from knotting.
 *
 * Domain folders are ordered by the flow of a delivery: reconcile/ finds missed deliveries and records
 * them in the ledger, ledger/ records and plans each delivery (using pull/'s pure planning and composing),
 * pull/ enriches, outbox/ sends. A domain folder may import folders to its right, never to its left,
 * except a folder's `types.ts`: the types and constants that cross its Durable Object's boundary
 * (ledger/types.ts, outbox/types.ts), which any domain may import. outbox/ is seen by the other
 * domains only through its types.ts: a helper two domains share moves down to lib/ or config/.
 * audit/ is the audit trail (its Durable Object and the audit() entry point): the HTTP tier records
 * operator actions through it, the domain folders automatic ones (retention, breaker holds); it imports
 * only config/ and lib/, so recording can never reach back into what it records.
 *
 * alerts/ (the issues engine and its notifications) sits between the domain and config tiers: every
 * domain folder may report to it, and it imports only lib/, config/ and the domains' types.ts (what it
 * evaluates comes to it as plain data, read by the HTTP tier; a notification goes to a channel's
 * outbox through outbox/types.ts, like a ledger's hand-off).
 *
 * Type-only imports count like any other: a type import still ties the importer to that file's shape,
 * and the STYLE rule "shared types live in the folder's types.ts, never in the class file" is about
 * exactly those imports.
 */
const HTTP = "^src/(routes|admin|middleware)/|^src/(app|index|cron)[.]tsx?$";
const DOMAIN = "^src/(ledger|outbox|reconcile|pull)/";
const BASE = "^src/(providers/centrepoint|config)/";
const AUDIT = "^src/audit/";
const TYPES = "^src/(ledger|outbox|reconcile|pull)/types[.]ts$";
const ALERTS = "^src/alerts/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A file cycle: move what both sides need into a file both can import.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "domain-not-http",
      severity: "error",
      comment: "Domain folders do not import the HTTP layer: move the shared piece down (ledger/, config/, lib/).",
      from: { path: DOMAIN },
      to: { path: HTTP },
    },
    {
      name: "base-not-up",
      severity: "error",
      comment: "providers/centrepoint/ and config/ import only each other and lib/.",
      from: { path: BASE },
      to: { path: [HTTP, DOMAIN, AUDIT] },
    },
    {
      name: "audit-only-down",
      severity: "error",
      comment: "audit/ imports only config/ and lib/: the trail never reaches back into the HTTP or domain code it records.",
      from: { path: AUDIT },
      to: { path: [HTTP, DOMAIN, "^src/providers/"] },
    },
    {
      name: "alerts-below-domains",
      severity: "error",
      comment: "alerts/ imports only lib/, config/ and the domains' types.ts: domain folders report to it, never the other way.",
      from: { path: ALERTS },
      to: { path: [HTTP, DOMAIN, "^src/providers/"], pathNot: TYPES },
    },
    {
      name: "base-not-alerts",
      severity: "error",
      comment: "providers/centrepoint/, config/ and lib/ sit below alerts/.",
      from: { path: [BASE, "^src/lib/"] },
      to: { path: ALERTS },
    },
    {
      name: "lib-is-bottom",
      severity: "error",
      comment: "lib/, env.ts and version.ts import nothing else of src/.",
      from: { path: "^src/lib/|^src/(env|version)[.]ts$" },
      to: { path: "^src/", pathNot: "^src/lib/|^src/(env|version)[.]ts$" },
    },
    {
      name: "outbox-is-last-domain",
      severity: "error",
      comment: "outbox/ imports no other domain folder but its types.ts.",
      from: { path: "^src/outbox/" },
      to: { path: "^src/(ledger|pull|reconcile)/", pathNot: TYPES },
    },
    {
      name: "pull-not-left",
      severity: "error",
      comment: "pull/ may import outbox/, and of ledger/ and reconcile/ only their types.ts.",
      from: { path: "^src/pull/" },
      to: { path: "^src/(ledger|reconcile)/", pathNot: TYPES },
    },
    {
      name: "ledger-not-left",
      severity: "error",
      comment: "ledger/ may import pull/ and outbox/, and of reconcile/ only its types.ts.",
      from: { path: "^src/ledger/" },
      to: { path: "^src/reconcile/", pathNot: TYPES },
    },
    {
      name: "outbox-through-types",
      severity: "error",
      comment: "outbox/ is not a drawer of shared helpers: other domains see only its types.ts (a helper two domains share goes down to lib/ or config/).",
      from: { path: "^src/(ledger|pull|reconcile|alerts)/" },
      to: { path: "^src/outbox/", pathNot: TYPES },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment: "An import the checker cannot resolve would escape every rule.",
      from: { path: "^src/" },
      to: { couldNotResolve: true, pathNot: "^cloudflare:|^node:" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "[.]d[.]ts$" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      extensions: [".ts", ".tsx", ".js"],
      exportsFields: ["exports"],
      conditionNames: ["types", "import", "workerd", "worker", "default"],
    },
  },
};
