/** Name and version of the relay, sent as the outbound User-Agent and shown by the admin surface. */
export const RELAY_NAME = "CentrePoint-Edge-Relay";
export const RELAY_VERSION = "0.1.0";
export const USER_AGENT = `${RELAY_NAME}/${RELAY_VERSION}`;
