import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";
import { log } from "../lib/log";
import { migrate } from "../lib/migrate";
import { nextHour } from "../lib/segments";
import { AUDIT_ARCHIVE_INITIAL, type AuditArchiveState, archiveAuditStep } from "./archive";
import type { AuditLine } from "./format";
import { AUDIT_MIGRATIONS } from "./schema";
import {
  appendEntry,
  type AuditPoint,
  type AuditQuery,
  type ChainCheck,
  exportPage,
  exportRange,
  head,
  listEntries,
  type NewEntry,
  readMeta,
  verifyEntries,
  writeMeta,
} from "./store";

/** The one trail's name. */
export const AUDIT_TRAIL_NAME = "audit-trail";
/** Entries of one export page. */
const EXPORT_PAGE_ROWS = 500;
/** Entries one verify() call checks at most. */
const VERIFY_ROWS = 5000;
/** Segments one alarm writes at most before it yields. */
const ARCHIVE_STEPS = 10;

/** The trail's state as the Audit page and the API show it. */
export interface AuditStatus {
  head: AuditPoint;
  archive: Omit<AuditArchiveState, "pending">;
  /** The latest verification of the stored chain: verified from the start through `through` (when), or the first broken entry. */
  verified: (ChainCheck & { checkedAt: number }) | null;
}

/**
 * The audit trail (docs/audit.md): one Durable Object for the whole relay, append-only and hash
 * chained (audit/store.ts, audit/format.ts), archived to R2 from its alarm (audit/archive.ts).
 * Thin: each RPC method delegates.
 */
export class AuditTrail extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  /** Whether this instance knows the archive alarm to be set (null: not known yet). */
  private alarmSet: boolean | null = null;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrate(ctx.storage, AUDIT_MIGRATIONS));
  }

  /** Appends an entry; durable when the promise resolves. */
  async append(entry: NewEntry): Promise<{ seq: number; entryHash: string }> {
    const now = Date.now();
    const line = this.ctx.storage.transactionSync(() => appendEntry(this.sql, entry, now));
    if (this.alarmSet !== true) {
      if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(nextHour(now));
      this.alarmSet = true;
    }
    return { seq: line.seq, entryHash: line.entryHash };
  }

  /** A page of entries, newest first. */
  async list(q: AuditQuery): Promise<{ items: AuditLine[]; next: string | null }> {
    return listEntries(this.sql, q);
  }

  /** The first and last seq written in [from, to), or null. */
  async exportRange(from?: number, to?: number): Promise<{ firstSeq: number; lastSeq: number } | null> {
    return exportRange(this.sql, from, to);
  }

  /** NDJSON of one page of an export. */
  async exportPage(firstSeq: number, lastSeq: number): Promise<{ text: string; next: number | null }> {
    return exportPage(this.sql, firstSeq, lastSeq, EXPORT_PAGE_ROWS);
  }

  /** Head, archive progress and the latest verification. */
  async status(): Promise<AuditStatus> {
    const { pending: _pending, ...archive } = readMeta(this.sql, "archive", AUDIT_ARCHIVE_INITIAL);
    return { head: head(this.sql), archive, verified: readMeta<AuditStatus["verified"]>(this.sql, "verified", null) };
  }

  /**
   * Verifies the stored chain from the last verified entry on (from the start when `full`, or after
   * a break), at most VERIFY_ROWS entries per call; stores and answers the result.
   */
  async verify(full = false): Promise<AuditStatus> {
    const last = readMeta<AuditStatus["verified"]>(this.sql, "verified", null);
    const from = full || !last || last.broken ? AUDIT_ARCHIVE_INITIAL.through : last.through;
    writeMeta(this.sql, "verified", { ...verifyEntries(this.sql, from, VERIFY_ROWS), checkedAt: Date.now() });
    return this.status();
  }

  /** Archives the closed segments, then sets the alarm for the next look (none when nothing waits). */
  override async alarm(): Promise<void> {
    let state = readMeta(this.sql, "archive", AUDIT_ARCHIVE_INITIAL);
    let dueAt: number | null = null;
    for (let i = 0; i < ARCHIVE_STEPS; i++) {
      const step = await archiveAuditStep(this.sql, this.env.ARCHIVE, state, Date.now(), (s) => writeMeta(this.sql, "archive", s));
      state = step.state;
      writeMeta(this.sql, "archive", state);
      dueAt = step.dueAt;
      if (state.halted) log("error", "audit archive halted", { reason: state.halted });
      if (!step.archived) break;
    }
    this.alarmSet = dueAt !== null;
    if (dueAt !== null) await this.ctx.storage.setAlarm(dueAt);
  }
}
