import type { Bindings } from "../env";
import type { IssueChange } from "./types";

/**
 * Hands one issue state change to the alert channels (the channels' side of issue 19). Called by
 * the Alerts object's alarm at least once per change, in order of seq; a change counts as sent only
 * after this resolves, so it may be called again with the same `change.id` after a failure or a
 * restart: the receiving side dedupes on it. Throwing means "not sent, try again later".
 */
export async function notifyIssueChange(env: Bindings, change: IssueChange): Promise<void> {}
