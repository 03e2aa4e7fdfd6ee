/**
 * A stand-in for REDCap's API record import (`content=record`), answering as REDCap documents it:
 * 200 `{"count": n}` with `returnContent=count`, 403 `{"error": …}` for a wrong token, 400
 * `{"error": …}` for a bad request or a field the project does not have. Pure: the tests call it
 * from a fake fetch, the demo from an HTTP server.
 */

/** The project a stand-in answers for. */
export interface RedcapProject {
  token: string;
  /** The project's real data fields; record_id first. */
  fields: readonly string[];
}

/** The fields of the example project in docs/transforms.md. */
export const EXAMPLE_REDCAP_FIELDS = ["record_id", "cp_upload_id", "cp_upload_first_epoch", "cp_upload_last_epoch", "cp_day", "cp_wear_minutes", "cp_steps"];

/** REDCap's answer to one API request: its status and JSON body. Imported records are added to `store` by record_id. */
export function redcapAnswer(
  project: RedcapProject,
  contentType: string,
  body: string,
  store: Map<string, Record<string, string>>,
): { status: number; body: string } {
  const fail = (status: number, error: string) => ({ status, body: JSON.stringify({ error }) });
  if (!contentType.startsWith("application/x-www-form-urlencoded")) return fail(400, "The request is not a form (application/x-www-form-urlencoded)");
  const form = new URLSearchParams(body);
  if (form.get("token") !== project.token) return fail(403, "You do not have permissions to use the API");
  if (form.get("content") !== "record") return fail(400, 'The value of the parameter "content" is not valid');
  if (form.get("format") !== "json") return fail(400, 'The value of the parameter "format" is not valid');
  if (form.get("type") !== "flat") return fail(400, 'The value of the parameter "type" is not valid');
  let records: unknown;
  try {
    records = JSON.parse(form.get("data") ?? "");
  } catch {
    return fail(400, "The data being imported is not formatted correctly");
  }
  if (!Array.isArray(records) || records.some((r) => typeof r !== "object" || r === null || Array.isArray(r)))
    return fail(400, "The data being imported is not formatted correctly");
  const unknown = [...new Set((records as Record<string, unknown>[]).flatMap((r) => Object.keys(r).filter((k) => !project.fields.includes(k))))];
  if (unknown.length > 0) return fail(400, `The following fields were not found in the project as real data fields: ${unknown.join(", ")}`);
  for (const r of records as Record<string, unknown>[]) {
    const id = String(r.record_id ?? "");
    if (id === "") return fail(400, "The record_id field is missing");
    store.set(id, { ...store.get(id), ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? "" : String(v)])) });
  }
  const ids = (records as Record<string, unknown>[]).map((r) => String(r.record_id));
  return form.get("returnContent") === "ids" ? { status: 200, body: JSON.stringify(ids) } : { status: 200, body: JSON.stringify({ count: records.length }) };
}
