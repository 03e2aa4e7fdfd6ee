/**
 * The facts enrichment adds to an event (docs/pull.md), as plain data: which ids an event offers,
 * which facts apply to it, and the shapes the lookups produce. Pure.
 *
 * Data minimisation: a subject fact is its study's identifiers and time zone only. CentrePoint also
 * sends date of birth, gender, weight and height; `subjectSchema` drops them at the edge and
 * nothing here has a field for them (the EDC already holds them; the relay must not become a second
 * store of patient data).
 */
import type { EnrichFact } from "../config/schemas";
import type { DataFile, Subject, Upload } from "../providers/centrepoint/api/schemas";

/** The ids an event carries that lookups need (all strings, null when absent). */
export interface EventKeys {
  kind: string;
  studyId: string | null;
  subjectId: string | null;
  uploadId: string | null;
  trackingId: string | null;
}

/** A subject as events carry it: the study's identifiers and the subject's time zone, nothing personal. */
export interface SubjectFact {
  subjectId: string;
  subjectIdentifier: string;
  siteId: string | null;
  siteIdentifier: string | null;
  timezone: string | null;
}

/** An upload's device and files. */
export interface UploadFact {
  uploadId: string;
  deviceSerial: string | null;
  firmware: string | null;
  batteryVoltage: number | null;
  sampleRateHz: number | null;
  dateUploadedUtc: string | null;
  files: {
    id: string;
    fileType: string | null;
    totalRecords: number | null;
    recordsInserted: number | null;
    beginOfData: string | null;
    endOfData: string | null;
  }[];
}

/** A data file of a completed raw-data request, before its relay link is made (per target, at hand-off). */
export interface DataFileFact {
  id: string;
  fileName: string;
  sizeBytes: number | null;
  /** CentrePoint's `expirationDateUtc` as sent, or null. */
  expiresAt: string | null;
}

/** What the lookups found so far; a fact is present only when found. */
export interface FoundFacts {
  subject?: SubjectFact;
  upload?: UploadFact;
  datafiles?: DataFileFact[];
}

/**
 * The enrichment of one delivery as stored beside its record (the ledger's `enrichments` row):
 * the facts found, the last error of each fact not found, and whether the lookup is over.
 */
export interface StoredEnrichment {
  found: FoundFacts;
  errors: Partial<Record<EnrichFact, string>>;
  /** No lookup of this delivery will be retried (each fact found, or failed for good, or the job gave up). */
  settled: boolean;
  attempts: number;
  /** Epoch ms of the last attempt. */
  updatedAt: number;
}

/** Most data files one event carries (CentrePoint makes two per request: data and summary). */
export const MAX_DATA_FILES = 100;

/** The ids of an event, from its normalized `data` (docs/events.md). */
export function keysOf(kind: string, data: Record<string, unknown> | null | undefined): EventKeys {
  const text = (v: unknown): string | null => (typeof v === "string" && v.trim() !== "" ? v.trim() : typeof v === "number" ? String(v) : null);
  return {
    kind,
    studyId: text(data?.studyId),
    subjectId: text(data?.subjectId),
    uploadId: text(data?.uploadId),
    trackingId: text(data?.trackingId),
  };
}

/** The `data` object of a serialized envelope, or null when it has none. */
export function envelopeData(envelope: string): Record<string, unknown> | null {
  try {
    const parsed = JSON.parse(envelope) as { data?: unknown };
    return typeof parsed.data === "object" && parsed.data !== null && !Array.isArray(parsed.data) ? (parsed.data as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Whether a fact can be looked up for an event: subject needs study and subject ids; upload an upload event's ids; datafiles a completed request's tracking id. */
export function factApplies(fact: EnrichFact, k: EventKeys): boolean {
  switch (fact) {
    case "subject":
      return k.studyId !== null && k.subjectId !== null;
    case "upload":
      return k.kind.startsWith("upload.") && k.studyId !== null && k.subjectId !== null && k.uploadId !== null;
    case "datafiles":
      return k.kind === "data_retrieval.completed" && k.trackingId !== null;
  }
}

/** The facts of `wanted` that apply to the event, in the canonical order. */
export function applicableFacts(wanted: readonly EnrichFact[], k: EventKeys): EnrichFact[] {
  return wanted.filter((f) => factApplies(f, k));
}

/** A subject as events carry it (the API answer is already minimised by `subjectSchema`). */
export function subjectFact(s: Subject): SubjectFact {
  return { subjectId: s.id, subjectIdentifier: s.subjectIdentifier, siteId: s.siteId, siteIdentifier: s.siteIdentifier, timezone: s.timezone };
}

/** An upload as events carry it. */
export function uploadFact(u: Upload): UploadFact {
  return {
    uploadId: u.id,
    deviceSerial: u.activityMonitorSerial,
    firmware: u.activityMonitorFirmware,
    batteryVoltage: u.activityMonitorBatteryVoltage,
    sampleRateHz: u.activityMonitorSampleRateHz,
    dateUploadedUtc: u.dateUploadedUtc,
    files: u.uploadFiles.map((f) => ({
      id: f.id,
      fileType: f.fileType,
      totalRecords: f.totalRecords,
      recordsInserted: f.recordsInserted,
      beginOfData: f.beginOfData,
      endOfData: f.endOfData,
    })),
  };
}

/** A completed request's files as events carry them (at most MAX_DATA_FILES). */
export function dataFileFacts(files: readonly DataFile[]): DataFileFact[] {
  return files.slice(0, MAX_DATA_FILES).map((f) => ({ id: f.id, fileName: f.fileName, sizeBytes: f.fileSizeBytes, expiresAt: f.expirationDateUtc }));
}

/** Whether every fact of `facts` was found. */
export function allFound(facts: readonly EnrichFact[], found: FoundFacts): boolean {
  return facts.every((f) => found[f] !== undefined);
}
