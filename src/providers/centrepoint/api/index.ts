/** Public surface of the CentrePoint V3 API client. */
export * from "./budget";
export * from "./client";
export * from "./endpoints";
export * from "./schemas";
export * from "./token";
