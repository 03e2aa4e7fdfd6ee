import { Hono } from "hono";
import type { AppEnv } from "../env";

/** Admin routes of the fan-out engine (replay, dead letters); mounted under /admin. */
export const outboxAdmin = new Hono<AppEnv>();
