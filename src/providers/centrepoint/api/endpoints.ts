/**
 * The V3 endpoints the relay calls, one function each: the path template, the scope and the schema
 * live here once. Every function returns the client's `Result`; none throws for bad ids (they are
 * URI-encoded into the path).
 */
import { err, type Result } from "../../../lib/result";
import { apiPath, describeSchemaError, SCOPE, type ApiError, type CentrePointApi, type Page } from "./client";
import {
  dataFilesSchema,
  downloadUrlSchema,
  historyItemSchema,
  rawActivityRequestBodySchema,
  rawActivityRequestSchema,
  subjectSchema,
  uploadSchema,
  webhookRegistrationSchema,
  type DataFile,
  type DownloadUrl,
  type HistoryItem,
  type RawActivityRequest,
  type RawActivityRequestBody,
  type Subject,
  type Upload,
  type WebhookRegistration,
} from "./schemas";

type Id = string | number;

/** Path templates, also the `endpoint` of errors and metrics. */
export const ENDPOINT = {
  webhook: "/centrepoint/v3/Studies/{studyId}/Webhooks/{webhookId}",
  webhookHistory: "/centrepoint/v3/Studies/{studyId}/Webhooks/{webhookId}/history",
  subject: "/centrepoint/v3/Studies/{studyId}/Subjects/{subjectId}",
  upload: "/centrepoint/v3/Studies/{studyId}/Subjects/{subjectId}/Uploads/{uploadId}",
  rawActivityRequests: "/dataretrieval/v3/RawActivityRequests",
  rawActivityRequest: "/dataretrieval/v3/RawActivityRequests/{trackingId}",
  dataFiles: "/dataretrieval/v3/RawActivityRequests/{trackingId}/datafiles",
  downloadUrl: "/dataretrieval/v3/DataFiles/{dataFileId}/downloadurl",
} as const;

/** CentrePoint's text when a client already has 10 active data-retrieval requests. */
export const ACTIVE_LIMIT_TEXT = "maximum concurrent active requests limit";

/** Whether an error is CentrePoint refusing a raw request because 10 are already active. */
export function isActiveLimitError(e: ApiError): boolean {
  return e.kind === "http" && e.reason.toLowerCase().includes(ACTIVE_LIMIT_TEXT);
}

/** A webhook registration (to check its URL, state and events). */
export function getWebhookRegistration(api: CentrePointApi, studyId: Id, webhookId: Id): Promise<Result<WebhookRegistration, ApiError>> {
  return api.get(apiPath(ENDPOINT.webhook, { studyId, webhookId }), webhookRegistrationSchema, { scope: SCOPE.centrePoint });
}

/** One page of a webhook's delivery history. */
export function getWebhookHistoryPage(
  api: CentrePointApi,
  studyId: Id,
  webhookId: Id,
  page: { offset?: number; limit?: number } = {},
): Promise<Result<Page<HistoryItem>, ApiError>> {
  return api.page(apiPath(ENDPOINT.webhookHistory, { studyId, webhookId }), historyItemSchema, { scope: SCOPE.centrePoint, ...page });
}

/** A webhook's history page by page, at most `maxPages` pages. */
export function webhookHistoryPages(
  api: CentrePointApi,
  studyId: Id,
  webhookId: Id,
  page: { offset?: number; limit?: number; maxPages: number },
): AsyncGenerator<Result<Page<HistoryItem>, ApiError>, void> {
  return api.pages(apiPath(ENDPOINT.webhookHistory, { studyId, webhookId }), historyItemSchema, { scope: SCOPE.centrePoint, ...page });
}

/** A subject, without its personal fields (see `subjectSchema`). */
export function getSubject(api: CentrePointApi, studyId: Id, subjectId: Id): Promise<Result<Subject, ApiError>> {
  return api.get(apiPath(ENDPOINT.subject, { studyId, subjectId }), subjectSchema, { scope: SCOPE.centrePoint });
}

/** An upload's details and files. */
export function getUpload(api: CentrePointApi, studyId: Id, subjectId: Id, uploadId: Id): Promise<Result<Upload, ApiError>> {
  return api.get(apiPath(ENDPOINT.upload, { studyId, subjectId, uploadId }), uploadSchema, { scope: SCOPE.centrePoint });
}

/**
 * Creates a raw activity request. The body is checked first (formats, offsets, the 15-day gt3x
 * rule); a bad body is `invalid_request` and nothing is sent.
 */
export async function createRawActivityRequest(api: CentrePointApi, body: RawActivityRequestBody): Promise<Result<RawActivityRequest, ApiError>> {
  const checked = rawActivityRequestBodySchema.safeParse(body);
  if (!checked.success) return err({ kind: "invalid_request", reason: describeSchemaError(checked.error), endpoint: ENDPOINT.rawActivityRequests });
  return api.post(apiPath(ENDPOINT.rawActivityRequests, {}), checked.data, rawActivityRequestSchema, { scope: SCOPE.dataRetrieval });
}

/** A raw activity request's status. */
export function getRawActivityRequest(api: CentrePointApi, trackingId: string): Promise<Result<RawActivityRequest, ApiError>> {
  return api.get(apiPath(ENDPOINT.rawActivityRequest, { trackingId }), rawActivityRequestSchema, { scope: SCOPE.dataRetrieval });
}

/** The data files of a completed raw activity request. */
export function listDataFiles(api: CentrePointApi, trackingId: string): Promise<Result<DataFile[], ApiError>> {
  return api.get(apiPath(ENDPOINT.dataFiles, { trackingId }), dataFilesSchema, { scope: SCOPE.dataRetrieval }) as Promise<Result<DataFile[], ApiError>>;
}

/** A fresh short-lived download URL of a data file. Secret-like: never log or store it. */
export function getDownloadUrl(api: CentrePointApi, dataFileId: Id): Promise<Result<DownloadUrl, ApiError>> {
  return api.get(apiPath(ENDPOINT.downloadUrl, { dataFileId }), downloadUrlSchema, { scope: SCOPE.dataRetrieval });
}
