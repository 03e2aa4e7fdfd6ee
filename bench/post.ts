import { centrepointHeaders } from "../harness/centrepoint/headers.ts";
import { signBody } from "../harness/centrepoint/signing.ts";
import { http } from "../harness/http/client.ts";
import { uploadBody } from "../harness/centrepoint/payloads.ts";

/** POSTs one HMAC-signed upload webhook, delivery id and upload id `id`, to a relay's source, as CentrePoint would. */
export function postUpload(relayUrl: string, source: string, id: string, secret: string, timeoutMs = 10_000): ReturnType<typeof http> {
  const body = uploadBody({ uploadId: id });
  return http(`${relayUrl}/webhooks/${source}`, {
    method: "POST",
    headers: centrepointHeaders({ deliveryId: id, signature: signBody(secret, body) }),
    body,
    timeoutMs,
  });
}
