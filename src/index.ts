import { app } from "./app";

export { Ledger } from "./ledger/ledger";
export { Outbox } from "./outbox/outbox";

export default app;
