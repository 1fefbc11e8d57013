// The test API every suite imports, so the same files run under Node (vitest), Deno and Bun.
// Under Node this is vitest itself.

export { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
