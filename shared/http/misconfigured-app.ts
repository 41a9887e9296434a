/**
 * What a function serves when it cannot start (a setting missing or unusable, the database
 * unreachable): every request gets a 503 naming the settings at fault, so the problem is visible
 * to the caller and in the logs instead of as a crash loop. No values are ever echoed.
 *
 * @module
 */
import { Hono } from "hono";
import { errorBody } from "./error-handler.ts";

export function createMisconfiguredApp(problems: string[]): Hono {
  const app = new Hono();
  app.all("*", (c) =>
    c.json(
      errorBody("service_misconfigured", `The service is not configured correctly: ${problems.join("; ")}`, { problems }),
      503,
      { "retry-after": "30" },
    ));
  return app;
}
